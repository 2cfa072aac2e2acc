# The three functions (Python 3.12), one code package from the artifacts bucket, each in the VPC
# (to reach GeminiDB), logging to its own LTS stream, acting as its own agency.
resource "huaweicloud_fgs_function" "this" {
  for_each = local.functions

  name                  = "${local.name}-${each.key}"
  app                   = "default"
  description           = each.value.description
  functiongraph_version = "v2"
  runtime               = "Python3.12"
  handler               = each.value.handler
  memory_size           = each.value.memory_mb
  timeout               = each.value.timeout_s
  max_instance_num      = tostring(each.value.max_concurrency)
  code_type             = "obs"
  code_url              = local.package_url

  agency     = huaweicloud_identity_agency.platform.name
  app_agency = huaweicloud_identity_agency.function[each.key].name

  vpc_id     = var.vpc_id
  network_id = var.subnet_id

  # Unset settings (null) are left out, so the functions use their own defaults.
  user_data = jsonencode({ for name, value in merge(local.environment, local.function_environment[each.key]) : name => value if value != null })

  log_group_id    = huaweicloud_lts_group.functions.id
  log_group_name  = huaweicloud_lts_group.functions.group_name
  log_stream_id   = huaweicloud_lts_stream.function[each.key].id
  log_stream_name = huaweicloud_lts_stream.function[each.key].stream_name

  tags = local.tags

  depends_on = [
    huaweicloud_identityv5_policy_agency_attach.function,
    huaweicloud_identityv5_policy_agency_attach.platform_failures,
  ]
}

# Uploads under input_prefix invoke submit directly (no queue): FunctionGraph calls OBS-triggered
# functions asynchronously. huaweicloud_fgs_function_trigger documents OBS only through EventGrid,
# so this uses the (deprecated, still supported) resource whose OBS block the provider documents.
resource "huaweicloud_fgs_trigger" "uploads" {
  function_urn = huaweicloud_fgs_function.this["submit"].urn
  type         = "OBS"
  status       = "ACTIVE"

  obs {
    bucket_name             = huaweicloud_obs_bucket.recordings.bucket
    event_notification_name = "${local.name}-uploads"
    prefix                  = var.input_prefix
    events                  = ["ObjectCreated"]
  }
}

# An upload event whose submission keeps failing is retried (3 times, FunctionGraph's maximum),
# then written under failed_invocations_prefix: the SQS dead-letter queue of the AWS deploy.
resource "huaweicloud_fgs_async_invoke_configuration" "submit" {
  function_urn                   = huaweicloud_fgs_function.this["submit"].urn
  max_async_event_age_in_seconds = 86400
  max_async_retry_attempts       = 3
  enable_async_status_log        = true

  on_failure {
    destination = "OBS"
    param = jsonencode({
      bucket  = huaweicloud_obs_bucket.recordings.bucket
      prefix  = "/${var.failed_invocations_prefix}submit/"
      expires = 14
    })
  }
}

resource "huaweicloud_fgs_function_trigger" "reconcile_schedule" {
  function_urn = huaweicloud_fgs_function.this["reconcile"].urn
  type         = "TIMER"
  status       = "ACTIVE"
  event_data = jsonencode({
    name           = "${local.name}-reconcile-every-5-minutes"
    schedule_type  = "Rate"
    schedule       = "5m"
    sync_execution = false
    user_event     = "reconcile"
  })
}

# The functions and their settings, as infra/functions.toml lists them for both deploys
# (tests/infra/test_deploy_manifest.py holds this file, serverless.yml and the manifest together).
locals {
  name = "bucketscribe-${var.stage}"
  tags = { service = "bucketscribe", stage = var.stage }

  functions = {
    submit = {
      description     = "Upload notifications -> submit transcription jobs"
      handler         = "functiongraph_submit.handler"
      timeout_s       = 300
      memory_mb       = 1024
      max_concurrency = 5
    }
    callback = {
      description = "Provider callbacks (SIS, DashScope push) and the job status API"
      handler     = "functiongraph_callback.handler"
      # API Gateway's backend timeout is set to the same 28 s (api.tf).
      timeout_s = 28
      memory_mb = 1024
      # FunctionGraph's default: callbacks are not throttled by us.
      max_concurrency = 400
    }
    reconcile = {
      description = "Carry on unfinished jobs (poll, resolve lost submissions, resubmit), settle failed uploads"
      handler     = "functiongraph_reconcile.handler"
      timeout_s   = 300
      memory_mb   = 1024
      # One poller at a time keeps DashScope queries under the account's 20 requests/s.
      max_concurrency = 1
    }
  }

  # Environment only one function gets (an object indexed by function name, not a for_each map).
  function_environment = {
    submit = {
      # The claim lease equals the timeout: a crashed submission is retried after it.
      BUCKETSCRIBE_CLAIM_LEASE_S = "300"
    }
    callback = {}
    reconcile = {
      # It claims jobs it submits again, as the submit function does.
      BUCKETSCRIBE_CLAIM_LEASE_S = "300"
      # Upload events of submit that failed every retry (functions.tf, on_failure): settled here.
      BUCKETSCRIBE_FAILED_INVOCATIONS_BUCKET = huaweicloud_obs_bucket.recordings.bucket
      BUCKETSCRIBE_FAILED_INVOCATIONS_PREFIX = "${var.failed_invocations_prefix}submit/"
    }
  }

  # FunctionGraph passes these as environment variables (user_data). Secret *names* only: the
  # functions read the values from CSMS at run time with their agency's temporary key.
  environment = {
    BUCKETSCRIBE_JOBS_TABLE                    = var.jobs_table
    BUCKETSCRIBE_JOBS_ENDPOINT_URL             = var.jobs_endpoint_url
    BUCKETSCRIBE_JOBS_REGION                   = var.region
    BUCKETSCRIBE_JOBS_CREDENTIALS_SECRET_NAME  = huaweicloud_csms_secret.operator["jobs_store_credentials"].name
    BUCKETSCRIBE_INPUT_PREFIX                  = var.input_prefix
    BUCKETSCRIBE_OUTPUT_PREFIX                 = var.output_prefix
    BUCKETSCRIBE_CALLBACK_BASE_URL             = "https://${var.callback_domain}"
    BUCKETSCRIBE_CLOUD                         = "huawei"
    BUCKETSCRIBE_OBS_REGION                    = var.region
    BUCKETSCRIBE_CSMS_REGION                   = var.region
    BUCKETSCRIBE_CALLBACK_SECRET_NAME          = huaweicloud_csms_secret.generated["callback"].name
    BUCKETSCRIBE_STATUS_API_TOKEN_SECRET_NAME  = huaweicloud_csms_secret.generated["status_api_token"].name
    BUCKETSCRIBE_PUSH_TOKEN_SECRET_NAME        = huaweicloud_csms_secret.generated["push_token"].name
    BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME   = huaweicloud_csms_secret.operator["sis_credentials"].name
    BUCKETSCRIBE_DASHSCOPE_API_KEY_SECRET_NAME = huaweicloud_csms_secret.operator["dashscope_api_key"].name
    BUCKETSCRIBE_PROFILES                      = local.inline_profiles
    BUCKETSCRIBE_PROFILES_FILE                 = var.profiles_file
    BUCKETSCRIBE_SIS_REGION                    = var.sis_region
    BUCKETSCRIBE_SIS_PROJECT_ID                = var.sis_project_id
    BUCKETSCRIBE_SIS_ENDPOINT                  = var.sis_endpoint
    BUCKETSCRIBE_DASHSCOPE_BASE_URL            = coalesce(var.dashscope_base_url, local.dashscope_endpoints[var.dashscope_region].http)
    BUCKETSCRIBE_DASHSCOPE_WS_URL              = coalesce(var.dashscope_ws_url, local.dashscope_endpoints[var.dashscope_region].websocket)
    BUCKETSCRIBE_DASHSCOPE_WORKSPACE           = var.dashscope_workspace
    BUCKETSCRIBE_URL_SIGNER_SECRET_NAME        = huaweicloud_csms_secret.operator["url_signer"].name
    # 512 MB of /tmp for a zip-packaged function: two of the largest part made here (a timed-out
    # run may leave one behind in a warm instance), whatever the provider would take.
    BUCKETSCRIBE_MAX_PART_BYTES      = "209715200"
    BUCKETSCRIBE_WEBHOOK_SECRET_NAME = huaweicloud_csms_secret.operator["webhook"].name
    BUCKETSCRIBE_SMN_TOPIC_URN       = huaweicloud_smn_topic.job_events.topic_urn
    POWERTOOLS_SERVICE_NAME          = "bucketscribe"
    POWERTOOLS_METRICS_NAMESPACE     = "bucketscribe"
    POWERTOOLS_LOG_LEVEL             = var.log_level
    # No X-Ray on Huawei Cloud.
    POWERTOOLS_TRACE_DISABLED = "true"
    # No pydantic plugins: spares each cold start their search through every package's entry points.
    PYDANTIC_DISABLE_PLUGINS = "1"
  }

  # The DashScope endpoints of each region bucketscribe's models are served in (as serverless.yml's
  # custom.dashscopeEndpoints; variables.tf refuses other regions).
  dashscope_endpoints = {
    cn-beijing = {
      http      = "https://dashscope.aliyuncs.com/api/v1"
      websocket = "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
    }
  }

  # BUCKETSCRIBE_PROFILES: the profiles variable, else (no profiles file either) the default SIS
  # profile with sis_property; empty when the functions are to read profiles_file.
  default_profiles = jsonencode([{ name = "default", prefix = "", provider = "sis", sis = { property = var.sis_property } }])
  inline_profiles  = var.profiles != null ? var.profiles : (var.profiles_file != null ? "" : local.default_profiles)

  # Secret name in CSMS for each secret of the manifest.
  secret_names = {
    callback          = "${local.name}-callback-secret"
    status_api_token  = "${local.name}-status-api-token"
    push_token        = "${local.name}-push-token"
    sis_credentials   = "${local.name}-sis-credentials"
    dashscope_api_key = "${local.name}-dashscope-api-key"
    # GeminiDB's database user for the job table, as {"ak": user, "sk": password}.
    jobs_store_credentials = "${local.name}-jobs-store-credentials"
    # The URL signer user's permanent access key, as {"ak": ..., "sk": ...}.
    url_signer = "${local.name}-url-signer"
    # The webhooks' signing secret (whsec_...); a profile's own must start with webhook_secret_prefix.
    webhook = "${local.name}-webhook-default"
  }
  webhook_secret_prefix = "${local.name}-webhook-"
}

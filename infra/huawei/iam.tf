# One agency per function, delegated to FunctionGraph (op_svc_cff), used as the function's
# execution agency (app_agency): its temporary key is what the code signs OBS and CSMS requests
# with. Each carries one IAM v5 identity policy scoped to the object prefixes and secret names that
# function uses (policies/<function>.json, the same grants as infra/resources/iam.yml on AWS).
resource "huaweicloud_identity_agency" "function" {
  for_each = local.functions

  name                  = "${local.name}-${each.key}"
  description           = "bucketscribe ${var.stage} ${each.key}: what the function's code may do"
  delegated_domain_name = "op_svc_cff"
  duration              = "FOREVER"
}

resource "huaweicloud_identityv5_policy" "function" {
  for_each = local.functions

  name            = "${local.name}-${each.key}"
  description     = "bucketscribe ${var.stage} ${each.key}: object prefixes and secrets it uses"
  policy_document = templatefile("${path.module}/policies/${each.key}.json", local.policy_values)
}

resource "huaweicloud_identityv5_policy_agency_attach" "function" {
  for_each = local.functions

  policy_id = huaweicloud_identityv5_policy.function[each.key].id
  agency_id = huaweicloud_identity_agency.function[each.key].id
}

# The configuration agency FunctionGraph itself acts with for all three functions: attach them to
# the VPC (ports in the subnet) and write failed asynchronous invocations to their OBS prefix. The
# functions' own code never gets these rights.
resource "huaweicloud_identity_role" "platform_vpc" {
  name        = "${local.name}-fgs-vpc-access"
  description = "bucketscribe ${var.stage}: FunctionGraph attaches the functions to the VPC"
  type        = "XA"
  policy      = file("${path.module}/policies/platform_vpc.json")
}

resource "huaweicloud_identity_agency" "platform" {
  name                  = "${local.name}-platform"
  description           = "bucketscribe ${var.stage}: FunctionGraph's own access (VPC, failure destination)"
  delegated_domain_name = "op_svc_cff"
  duration              = "FOREVER"

  project_role {
    project = var.region
    roles   = [huaweicloud_identity_role.platform_vpc.name]
  }
}

resource "huaweicloud_identityv5_policy" "platform_failures" {
  name            = "${local.name}-failed-invocations"
  description     = "bucketscribe ${var.stage}: FunctionGraph writes failed upload events"
  policy_document = templatefile("${path.module}/policies/platform_failures.json", local.policy_values)
}

resource "huaweicloud_identityv5_policy_agency_attach" "platform_failures" {
  policy_id = huaweicloud_identityv5_policy.platform_failures.id
  agency_id = huaweicloud_identity_agency.platform.id
}

# The URL signer: an IAM user whose permanent access key signs the media URLs handed to SIS and
# DashScope (clouds/huawei/url_signing.py). A URL signed with an agency's temporary key dies with
# that key (at most 24 h after FunctionGraph issued it, often sooner than a provider fetches); this
# user's key does not, so its URLs live exactly BUCKETSCRIBE_PRESIGN_EXPIRY_S. It may read what gets
# presigned and nothing else (policies/url_signer.json). It has no password and no key from
# Terraform: the operator makes its access key after the first deploy and puts it in the url_signer
# secret (docs/deploy.md, "The URL signer"), so the key never passes through the state.
resource "huaweicloud_identityv5_user" "url_signer" {
  name        = "${local.name}-url-signer"
  description = "bucketscribe ${var.stage}: signs the media URLs handed to the speech providers"
  enabled     = true
}

resource "huaweicloud_identityv5_policy" "url_signer" {
  name            = "${local.name}-url-signer"
  description     = "bucketscribe ${var.stage}: reads uploads and the audio made for providers"
  policy_document = templatefile("${path.module}/policies/url_signer.json", local.policy_values)
}

resource "huaweicloud_identityv5_policy_user_attach" "url_signer" {
  policy_id = huaweicloud_identityv5_policy.url_signer.id
  user_id   = huaweicloud_identityv5_user.url_signer.id
}

locals {
  # What the policy templates name: the bucket, its prefixes and the secrets.
  policy_values = {
    bucket                        = var.bucket_name
    input_prefix                  = var.input_prefix
    output_prefix                 = var.output_prefix
    failed_invocations_prefix     = var.failed_invocations_prefix
    callback_secret               = local.secret_names["callback"]
    status_api_token_secret       = local.secret_names["status_api_token"]
    push_token_secret             = local.secret_names["push_token"]
    sis_credentials_secret        = local.secret_names["sis_credentials"]
    dashscope_api_key_secret      = local.secret_names["dashscope_api_key"]
    jobs_store_credentials_secret = local.secret_names["jobs_store_credentials"]
    url_signer_secret             = local.secret_names["url_signer"]
    webhook_secret_prefix         = local.webhook_secret_prefix
    job_events_topic              = huaweicloud_smn_topic.job_events.name
    secrets_kms_key_id            = huaweicloud_kms_key.secrets.id
  }
}

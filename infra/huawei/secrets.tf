# Secrets live in CSMS only; the functions get their names (BUCKETSCRIBE_*_SECRET_NAME) and read
# the values at run time with their agency's temporary key. Keep the Terraform state encrypted and
# private (docs/deploy.md): the generated values pass through it, as they would on any IaC tool.

# The secrets are encrypted with a key of this deployment rather than CSMS's default key
# (csms/default), whose ID the deploy cannot know: the agencies may then decrypt with this one
# key only (policies/*.json, DecryptSecrets), not with every key of the account.
resource "huaweicloud_kms_key" "secrets" {
  key_alias        = "${local.name}-secrets"
  key_description  = "bucketscribe ${var.stage}: encrypts the deployment's CSMS secrets"
  rotation_enabled = true
  pending_days     = "7"
  tags             = local.tags
}

# Signs per-job callback tokens; bearer token of GET /jobs; header token of DashScope pushes.
resource "random_password" "generated" {
  for_each = toset(["callback", "status_api_token", "push_token"])

  length  = 48
  special = false
}

resource "huaweicloud_csms_secret" "generated" {
  for_each = random_password.generated

  name        = local.secret_names[each.key]
  description = "bucketscribe ${var.stage}: ${replace(each.key, "_", " ")} (generated)"
  secret_text = each.value.result
  kms_key_id  = huaweicloud_kms_key.secrets.id
  tags        = local.tags
}

# Filled in by the operator after the first deploy (docs/deploy.md): the SIS access key as JSON
# {"ak": ..., "sk": ..., "project_id": ...}, the DashScope API key, the GeminiDB user the
# functions sign job-table requests with, as {"ak": user, "sk": password}, the URL signer
# user's access key as {"ak": ..., "sk": ...} (until then "{}": media URLs are signed with the
# agency's temporary key), and the webhooks' signing secret (whsec_...; until then deliveries
# wait, refused to sign with a placeholder). Terraform writes a placeholder once and never looks
# at the value again.
resource "huaweicloud_csms_secret" "operator" {
  for_each = {
    sis_credentials        = "{}"
    dashscope_api_key      = "set-me"
    jobs_store_credentials = "{}"
    url_signer             = "{}"
    webhook                = "set-me"
  }

  name        = local.secret_names[each.key]
  description = "bucketscribe ${var.stage}: ${replace(each.key, "_", " ")} (fill in after deploy)"
  secret_text = each.value
  kms_key_id  = huaweicloud_kms_key.secrets.id
  tags        = local.tags

  lifecycle {
    ignore_changes = [secret_text]
  }
}

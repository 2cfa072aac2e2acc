# bucketscribe on Huawei Cloud: FunctionGraph + OBS + APIG + CSMS + LTS, with GeminiDB's
# DynamoDB-compatible API as the job store. See docs/deploy.md for the steps and prerequisites.
terraform {
  required_version = ">= 1.5.0"

  required_providers {
    # 1.95.0 is the first release with huaweicloud_identityv5_policy_agency_attach (iam.tf); every
    # other resource type used here is older (tests/infra/fixtures/huaweicloud_schema.json).
    huaweicloud = {
      source  = "huaweicloud/huaweicloud"
      version = ">= 1.95.0, < 2.0.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.5.0, < 4.0.0"
    }
  }
}

# Credentials come from the environment (HW_ACCESS_KEY / HW_SECRET_KEY, or a KooCLI profile),
# never from this directory.
provider "huaweicloud" {
  region = var.region
}

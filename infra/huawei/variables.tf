variable "region" {
  description = "Huawei Cloud region for every resource (SIS recording-file recognition runs in cn-north-4 and cn-east-3)"
  type        = string
  default     = "cn-north-4"
}

variable "stage" {
  description = "Deployment name, part of every resource name (lower case letters, digits, hyphens)"
  type        = string
  default     = "dev"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.stage))
    error_message = "stage must be 2-16 lower-case letters, digits or hyphens, starting with a letter."
  }
}

variable "bucket_name" {
  description = "Globally unique name of the recordings bucket (uploads and transcripts)"
  type        = string
}

variable "artifacts_bucket_name" {
  description = "Globally unique name of the private bucket that holds the function code packages"
  type        = string
}

variable "input_prefix" {
  description = "Uploads under this prefix are transcribed (OBS trigger filter, agency scope)"
  type        = string
  default     = "incoming/"
}

variable "output_prefix" {
  description = "Transcripts are written under this prefix; keep it outside input_prefix"
  type        = string
  default     = "transcripts/"
}

variable "failed_invocations_prefix" {
  description = "Where FunctionGraph writes upload events whose asynchronous retries all failed"
  type        = string
  default     = "failed-invocations/"
}

variable "profiles" {
  description = "JSON list of bucketscribe.profiles.Profile (per-prefix provider, model, outputs), inline in the functions' environment (FunctionGraph allows 4096 characters for all variables); null: profiles_file, or one SIS profile with sis_property"
  type        = string
  default     = null
}

variable "profiles_file" {
  description = "Path of a profiles JSON file inside the code package (build_package.py --profiles-file puts it there), for profiles too large for the environment"
  type        = string
  default     = null
}

variable "sis_property" {
  description = "SIS model of the default profile (language_rate_domain, e.g. chinese_16k_media; docs/deploy.md lists them)"
  type        = string
  default     = "chinese_16k_media"
}

variable "sis_region" {
  description = "Region of the SIS endpoint (recording-file recognition: cn-north-4, cn-east-3, ap-southeast-3; chinese_16k_media only in cn-north-4 and cn-east-3)"
  type        = string
  default     = "cn-north-4"
}

variable "sis_project_id" {
  description = "Project ID for SIS in sis_region (or put project_id in the SIS credentials secret)"
  type        = string
  default     = ""
}

variable "sis_endpoint" {
  description = "SIS endpoint to use instead of the SDK's https://sis-ext.<sis_region>.myhuaweicloud.com; null: the SDK's"
  type        = string
  default     = null
}

variable "dashscope_region" {
  description = "Region of the DashScope (Model Studio) endpoints: every model the profiles can name is served from China (Beijing), with a Beijing API key"
  type        = string
  default     = "cn-beijing"

  validation {
    condition     = contains(["cn-beijing"], var.dashscope_region)
    error_message = "The Paraformer and Gummy models bucketscribe uses are served from cn-beijing only."
  }
}

variable "dashscope_base_url" {
  description = "DashScope HTTP API base URL instead of dashscope_region's (e.g. https://<workspace-id>.cn-beijing.maas.aliyuncs.com/api/v1); null: the region's"
  type        = string
  default     = null
}

variable "dashscope_ws_url" {
  description = "DashScope WebSocket URL for real-time profiles instead of dashscope_region's; null: the region's"
  type        = string
  default     = null
}

variable "dashscope_workspace" {
  description = "DashScope workspace ID sent as X-DashScope-WorkSpace; null: the API key's default workspace"
  type        = string
  default     = null
}

variable "log_level" {
  description = "POWERTOOLS_LOG_LEVEL of the functions"
  type        = string
  default     = "INFO"
}

variable "log_retention_days" {
  description = "How long LTS keeps the functions' logs"
  type        = number
  default     = 30
}

variable "package_path" {
  description = "The code package built by infra/huawei/build_package.py"
  type        = string
  default     = "../../.build/huawei/bucketscribe-functiongraph.zip"
}

# --- prerequisites (see docs/deploy.md, "Huawei Cloud: before the first deploy") ---------------

variable "vpc_id" {
  description = "VPC the functions join to reach the GeminiDB instance; it needs a NAT gateway (SNAT) for SIS, OBS, CSMS and DashScope"
  type        = string
}

variable "subnet_id" {
  description = "Subnet (network ID) in vpc_id for the functions"
  type        = string
}

variable "jobs_endpoint_url" {
  description = "Load-balancer address of the GeminiDB DynamoDB-compatible instance, e.g. http://192.168.0.10"
  type        = string
}

variable "jobs_table" {
  description = "Job table in that instance, created by infra/huawei/create_jobs_table.py (no '.' allowed)"
  type        = string
  default     = "bucketscribe-jobs"

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{3,48}$", var.jobs_table))
    error_message = "GeminiDB table names are 3-48 characters of letters, digits, '_' and '-'."
  }
}

variable "apig_instance_id" {
  description = "Dedicated API Gateway instance (with a public inbound address) that serves the callback API"
  type        = string
}

variable "callback_domain" {
  description = "Domain name you control for the callback API (SIS accepts only domain names in callback URLs); CNAME it to the group's sl_domain output and bind an SSL certificate to it"
  type        = string
}

variable "callback_certificate_id" {
  description = "ID of callback_domain's SSL certificate, uploaded to the API Gateway instance (SSL Certificates); Terraform binds it to the domain"
  type        = string
}

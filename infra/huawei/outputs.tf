output "recordings_bucket" {
  description = "Upload recordings under input_prefix of this bucket"
  value       = huaweicloud_obs_bucket.recordings.bucket
}

output "callback_base_url" {
  description = "Base URL of the callback / status API (SIS callbacks go to /callbacks/sis/{job_id})"
  value       = "https://${var.callback_domain}"
}

output "dashscope_callback_url" {
  description = "HTTPS target for the Alibaba Cloud EventBridge rule on DashScope task events"
  value       = "https://${var.callback_domain}/callbacks/dashscope"
}

output "callback_domain_cname_target" {
  description = "Point callback_domain at this name (DNS CNAME)"
  value       = try(data.huaweicloud_apig_groups.callbacks.groups[0].sl_domain, null)
}

output "secret_names" {
  description = "CSMS secrets; put the SIS key, the DashScope API key, the GeminiDB user and the URL signer's key into the *_credentials / *_api_key / url_signer ones"
  value       = local.secret_names
}

output "url_signer_user_id" {
  description = "Make a permanent access key for this IAM user and put it in the url_signer secret as {\"ak\": ..., \"sk\": ...}"
  value       = huaweicloud_identityv5_user.url_signer.id
}

output "job_events_topic_urn" {
  description = "SMN topic every job's end is published to: subscribe what should hear of it"
  value       = huaweicloud_smn_topic.job_events.topic_urn
}

output "function_urns" {
  value = { for name, function in huaweicloud_fgs_function.this : name => function.urn }
}

output "log_group_id" {
  description = "LTS log group of the three functions (one stream each)"
  value       = huaweicloud_lts_group.functions.id
}

output "log_stream_ids" {
  value = { for name, stream in huaweicloud_lts_stream.function : name => stream.id }
}

output "package_url" {
  description = "The code package the functions run (a rollback points code_url at an older one)"
  value       = local.package_url
}

# One LTS log group, one stream per function (FunctionGraph ships stdout/stderr there).
resource "huaweicloud_lts_group" "functions" {
  group_name  = local.name
  ttl_in_days = var.log_retention_days
  tags        = local.tags
}

resource "huaweicloud_lts_stream" "function" {
  for_each = local.functions

  group_id    = huaweicloud_lts_group.functions.id
  stream_name = "${local.name}-${each.key}"
  tags        = local.tags
}

# The callback and status API on a dedicated API Gateway instance (a prerequisite): one API per
# route, each backed by the callback function, published to an environment named after the
# stage, served on callback_domain. No gateway authentication: the handler authenticates every
# request itself (per-job token or signature for callbacks, bearer token for the status API).
locals {
  routes = {
    sis_callback   = { method = "POST", path = "/callbacks/sis/{job_id}", path_params = ["job_id"], query_params = [] }
    dashscope_push = { method = "POST", path = "/callbacks/dashscope", path_params = [], query_params = [] }
    job_status     = { method = "GET", path = "/jobs/{job_id}", path_params = ["job_id"], query_params = [] }
    job_lookup     = { method = "GET", path = "/jobs", path_params = [], query_params = ["bucket", "key"] }
  }
}

resource "huaweicloud_apig_group" "callbacks" {
  instance_id = var.apig_instance_id
  name        = replace("${local.name}-callbacks", "_", "-")
  description = "bucketscribe ${var.stage}: provider callbacks and job status"
}

resource "huaweicloud_apig_environment" "stage" {
  instance_id = var.apig_instance_id
  name        = replace(local.name, "-", "_")
  description = "bucketscribe ${var.stage}"
}

resource "huaweicloud_apig_api" "route" {
  for_each = local.routes

  instance_id             = var.apig_instance_id
  group_id                = huaweicloud_apig_group.callbacks.id
  type                    = "Public"
  name                    = "${replace(local.name, "-", "_")}_${each.key}"
  request_method          = each.value.method
  request_path            = each.value.path
  request_protocol        = "HTTPS"
  security_authentication = "NONE"
  matching                = "Exact"

  dynamic "request_params" {
    for_each = each.value.path_params
    content {
      name     = request_params.value
      location = "PATH"
      type     = "STRING"
      required = true
      maximum  = 128
    }
  }

  dynamic "request_params" {
    for_each = each.value.query_params
    content {
      name     = request_params.value
      location = "QUERY"
      type     = "STRING"
      required = false
      maximum  = 1024
    }
  }

  func_graph {
    function_urn    = huaweicloud_fgs_function.this["callback"].urn
    version         = "latest"
    invocation_type = "sync"
    timeout         = 28000
  }
}

resource "huaweicloud_apig_api_publishment" "route" {
  for_each = local.routes

  instance_id = var.apig_instance_id
  env_id      = huaweicloud_apig_environment.stage.id
  api_id      = huaweicloud_apig_api.route[each.key].id
}

resource "huaweicloud_apig_group_domain_associate" "callbacks" {
  instance_id               = var.apig_instance_id
  group_id                  = huaweicloud_apig_group.callbacks.id
  url_domain                = var.callback_domain
  min_ssl_version           = "TLSv1.2"
  ingress_http_port         = -1
  ingress_https_port        = 443
  is_http_redirect_to_https = false
}

# The domain's SSL certificate (uploaded to the instance beforehand: a prerequisite), bound to it;
# clients are not asked for certificates of their own.
resource "huaweicloud_apig_certificate_batch_domains_associate" "callbacks" {
  instance_id                  = var.apig_instance_id
  certificate_id               = var.callback_certificate_id
  verify_disabled_domain_names = [var.callback_domain]

  depends_on = [huaweicloud_apig_group_domain_associate.callbacks]
}

data "huaweicloud_apig_groups" "callbacks" {
  instance_id = var.apig_instance_id
  group_id    = huaweicloud_apig_group.callbacks.id
}

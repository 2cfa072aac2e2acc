# The recordings bucket: uploads land under input_prefix, transcripts under output_prefix.
# Private, encrypted (SSE-OBS, so the presigned GETs handed to SIS/DashScope need no KMS grant),
# versioned, TLS-only.
resource "huaweicloud_obs_bucket" "recordings" {
  bucket        = var.bucket_name
  acl           = "private"
  storage_class = "STANDARD"
  versioning    = true
  encryption    = true
  sse_algorithm = "AES256"
  force_destroy = false
  tags          = local.tags

  # One rule for the whole bucket (OBS refuses rules whose prefixes contain one another).
  lifecycle_rule {
    name    = "abort-uploads-and-expire-old-versions"
    enabled = true

    abort_incomplete_multipart_upload {
      days = 1
    }

    noncurrent_version_expiration {
      days = 30
    }
  }

  # Recordings and transcripts outlive the stack: `terraform destroy` stops here unless you
  # remove this block (docs/deploy.md, "Remove").
  lifecycle {
    prevent_destroy = true
  }
}

resource "huaweicloud_obs_bucket_policy" "recordings_tls_only" {
  bucket = huaweicloud_obs_bucket.recordings.bucket
  policy = templatefile("${path.module}/policies/bucket_tls_only.json", {
    bucket = huaweicloud_obs_bucket.recordings.bucket
  })
}

# Code packages, one object per content hash: a rollback points the functions at an older one.
resource "huaweicloud_obs_bucket" "artifacts" {
  bucket        = var.artifacts_bucket_name
  acl           = "private"
  storage_class = "STANDARD"
  versioning    = true
  encryption    = true
  sse_algorithm = "AES256"
  force_destroy = true
  tags          = local.tags
}

resource "huaweicloud_obs_bucket_policy" "artifacts_tls_only" {
  bucket = huaweicloud_obs_bucket.artifacts.bucket
  policy = templatefile("${path.module}/policies/bucket_tls_only.json", {
    bucket = huaweicloud_obs_bucket.artifacts.bucket
  })
}

resource "huaweicloud_obs_bucket_object" "package" {
  bucket       = huaweicloud_obs_bucket.artifacts.bucket
  key          = "functions/bucketscribe-${filemd5(var.package_path)}.zip"
  source       = var.package_path
  content_type = "application/zip"
  etag         = filemd5(var.package_path)
}

locals {
  package_url = "https://${huaweicloud_obs_bucket.artifacts.bucket}.obs.${var.region}.myhuaweicloud.com/${huaweicloud_obs_bucket_object.package.key}"
}

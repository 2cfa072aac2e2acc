# Every job's end is published to this topic (the functions' BUCKETSCRIBE_SMN_TOPIC_URN) as the
# event document bucketscribe's webhooks carry; subscribe whatever should hear of it (an HTTPS
# endpoint, a function, e-mail) in the SMN console or here. Only the functions' agencies may publish.
resource "huaweicloud_smn_topic" "job_events" {
  name         = "${local.name}-job-events"
  display_name = "bucketscribe ${var.stage} job events"
  introduction = "bucketscribe ${var.stage}: transcript.completed and transcript.failed events"
  tags         = local.tags
}

"""The AWS cloud's own settings (``BUCKETSCRIBE_*``)."""

from __future__ import annotations

from bucketscribe.settings import EnvironmentSettings


class AwsSettings(EnvironmentSettings):
    # Another endpoint for every AWS client (the local stack's moto server); unset: AWS's own.
    aws_endpoint_url: str | None = None
    # The queue that feeds the submit function: its real visibility timeout is read once per cold
    # start, and the claim lease must be shorter (``upload_queue.py``).
    upload_queue_url: str | None = None
    # Its dead-letter queue, which the reconciler settles.
    dead_letter_queue_url: str | None = None
    # The stack's own bucket: made in the stack's region, so its URLs are signed for the
    # function's AWS_REGION without asking S3 (any other bucket's region is looked up once).
    recordings_bucket: str | None = None
    # The URL signer's access key (a secret holding `aws iam create-access-key --query AccessKey`'s
    # output): media URLs signed with it last BUCKETSCRIBE_PRESIGN_EXPIRY_S; unset or empty, they
    # are signed with the role's session and die with it (clouds/aws/url_signing.py).
    url_signer_secret_name: str | None = None
    # The EventBridge bus (name or ARN) that every job's end is published to as a
    # "Transcript State Change" event from source "bucketscribe"; unset: none are published.
    event_bus_name: str | None = None

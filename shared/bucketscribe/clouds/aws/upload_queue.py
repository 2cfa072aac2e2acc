"""The upload queue's real visibility timeout against the claim lease, checked at cold start.

A worker owns a job it submits for the claim lease; when it dies, SQS hands its message to another
worker after the queue's visibility timeout. A lease that outlives the timeout would let the second
worker find the job still claimed and give up on it, so a mismatch refuses to run — read from the
queue itself (one ``GetQueueAttributes``), not from a copy of the number in the environment.
"""

from __future__ import annotations

from bucketscribe.clouds.aws.dead_letters import visibility_timeout_s
from bucketscribe.clouds.aws.settings import AwsSettings
from bucketscribe.settings import MisconfiguredDeployment, Settings


def check_upload_queue(settings: Settings, aws: AwsSettings | None = None) -> None:
    aws = aws or AwsSettings()
    if not aws.upload_queue_url:
        return
    visibility = visibility_timeout_s(aws.upload_queue_url, endpoint_url=aws.aws_endpoint_url)
    if (problem := settings.claim_lease_problem(visibility)) is not None:
        raise MisconfiguredDeployment(problem)

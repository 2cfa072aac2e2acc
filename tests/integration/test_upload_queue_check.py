"""The claim lease is checked against the upload queue's real visibility timeout (SQS's own
attribute, over the wire), not a copy of it in the environment: a mismatch refuses to run."""

from __future__ import annotations

import pytest

from bucketscribe.clouds.aws.settings import AwsSettings
from bucketscribe.clouds.aws.upload_queue import check_upload_queue
from bucketscribe.settings import MisconfiguredDeployment, Settings
from tests.integration.conftest import client

pytestmark = pytest.mark.integration


@pytest.fixture
def queue_url(aws: str) -> str:
    url: str = client("sqs", aws).create_queue(QueueName="uploads", Attributes={"VisibilityTimeout": "120"})[
        "QueueUrl"
    ]
    return url


def test_a_lease_longer_than_the_queues_visibility_timeout_refuses_to_run(
    aws: str, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    settings = Settings(claim_lease_s=300)
    with pytest.raises(MisconfiguredDeployment, match=r"visibility timeout \(120 s\)"):
        check_upload_queue(settings, AwsSettings(upload_queue_url=queue_url, aws_endpoint_url=aws))


def test_the_check_reads_the_queue_as_it_is_now(
    aws: str, queue_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws_settings = AwsSettings(upload_queue_url=queue_url, aws_endpoint_url=aws)
    client("sqs", aws).set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "1800"})
    check_upload_queue(Settings(claim_lease_s=300), aws_settings)  # no error: the queue was raised


def test_without_a_queue_there_is_nothing_to_check() -> None:
    check_upload_queue(Settings(), AwsSettings(upload_queue_url=None))

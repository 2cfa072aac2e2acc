"""The SQS dead-letter queue of the upload queue, as the dead-letter port (boto3, imported lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from bucketscribe.clouds.aws.events import object_refs_from_message_body
from bucketscribe.domain.notification import Notification
from bucketscribe.ports.dead_letters import DeadLetter

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class SqsDeadLetters:
    def __init__(
        self, queue_url: str, client: SQSClient | None = None, *, endpoint_url: str | None = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("sqs", endpoint_url=endpoint_url)
        self._sqs = client
        self._queue_url = queue_url

    def receive(self, max_messages: int) -> list[DeadLetter]:
        response = self._sqs.receive_message(
            QueueUrl=self._queue_url,
            MaxNumberOfMessages=max(1, min(max_messages, 10)),
            WaitTimeSeconds=0,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
        )
        return [
            DeadLetter(
                message_id=m["MessageId"],
                body=m.get("Body", ""),
                receipt=m["ReceiptHandle"],
                receive_count=int(m.get("Attributes", {}).get("ApproximateReceiveCount", "1")),
            )
            for m in response.get("Messages", [])
        ]

    def read(self, letter: DeadLetter) -> Notification:
        return object_refs_from_message_body(letter.body)

    def delete(self, letter: DeadLetter) -> None:
        self._sqs.delete_message(QueueUrl=self._queue_url, ReceiptHandle=letter.receipt)


def visibility_timeout_s(queue_url: str, *, endpoint_url: str | None = None) -> int:
    """The queue's real visibility timeout (one GetQueueAttributes call)."""
    import boto3

    attributes = boto3.client("sqs", endpoint_url=endpoint_url).get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"]
    )["Attributes"]
    return int(attributes["VisibilityTimeout"])

"""At-most-once submission per upload, on top of the job store's conditional create.

S3 delivers notifications at least once, and two copies can be processed at
the same moment by two function instances. Powertools idempotency (a DynamoDB
lock keyed on bucket/key/version-or-ETag) lets only one of them run; the other
fails its record, SQS redelivers it later, and it then gets the first one's
saved result. A RETRY raises, so the lock is released and nothing is cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bucketscribe.model import ObjectRef
from bucketscribe.pipeline.ports import PipelinePorts
from bucketscribe.pipeline.submit import UploadOutcome, UploadResult, submit_uploads

# Long enough to absorb late duplicate notifications (S3 documents delays of minutes).
REMEMBER_UPLOADS_SECONDS = 7 * 24 * 3600


class SubmitLater(RuntimeError):
    """The provider is busy or unreachable; the message must be delivered again."""


UploadSubmitter = Callable[[ObjectRef], UploadResult]


def plain_submitter(ports: PipelinePorts) -> UploadSubmitter:
    def submit(upload: ObjectRef) -> UploadResult:
        (result,) = submit_uploads([upload], ports)
        if result.outcome is UploadOutcome.RETRY:
            raise SubmitLater(f"{upload}: {result.reason}")
        return result

    return submit


class GuardedSubmitter:
    """``plain_submitter`` behind a Powertools idempotency lock; build once per cold start."""

    def __init__(self, ports: PipelinePorts, *, table_name: str, dynamodb_client: Any | None = None) -> None:
        from aws_lambda_powertools.utilities.idempotency import (
            DynamoDBPersistenceLayer,
            IdempotencyConfig,
            idempotent_function,
        )
        from aws_lambda_powertools.utilities.idempotency.serialization.pydantic import PydanticSerializer

        persistence = DynamoDBPersistenceLayer(table_name=table_name, boto3_client=dynamodb_client)
        self._config = IdempotencyConfig(
            event_key_jmespath="[bucket, key, version_id || etag]",
            raise_on_no_idempotency_key=True,
            expires_after_seconds=REMEMBER_UPLOADS_SECONDS,
        )
        submit_plain = plain_submitter(ports)

        @idempotent_function(
            data_keyword_argument="upload",
            persistence_store=persistence,
            config=self._config,
            output_serializer=PydanticSerializer(UploadResult),
        )
        def submit(upload: ObjectRef) -> UploadResult:
            return submit_plain(upload)

        self._submit = submit

    def register_lambda_context(self, context: Any) -> None:
        """The in-progress lock then expires with the invocation, so a crash never blocks a retry."""
        self._config.register_lambda_context(context)

    def __call__(self, upload: ObjectRef) -> UploadResult:
        result: UploadResult = self._submit(upload=upload)
        return result

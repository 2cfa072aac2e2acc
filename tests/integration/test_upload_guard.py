"""Powertools idempotency on a real DynamoDB wire (moto server) around the submit use case."""

from __future__ import annotations

import threading
import time

import pytest
from aws_lambda_powertools.utilities.idempotency.exceptions import IdempotencyAlreadyInProgressError

from bucketscribe.local.lambda_bridge import LocalLambdaContext
from bucketscribe.model import ObjectRef
from bucketscribe.pipeline.submit import UploadOutcome
from bucketscribe.providers.base import ProviderError
from bucketscribe.upload_guard import GuardedSubmitter, SubmitLater
from tests.audio import tone_wav
from tests.integration.conftest import client
from tests.unit.conftest import Clock

pytestmark = pytest.mark.integration


class SlowProvider:
    """A provider that takes a moment to answer, so two copies of an event overlap."""

    def __init__(self, inner, delay_s: float) -> None:
        self.inner = inner
        self.delay_s = delay_s
        self.name = inner.name
        self.max_files_per_task = inner.max_files_per_task
        self.accepts_callback_url = inner.accepts_callback_url
        self.accepted_containers = inner.accepted_containers

    def submit(self, items, profile):
        time.sleep(self.delay_s)
        return self.inner.submit(items, profile)

    def fetch(self, task_id):
        return self.inner.fetch(task_id)


@pytest.fixture
def guarded(aws):
    from bucketscribe.callback_auth import CallbackSigner
    from bucketscribe.output_keys import OutputLayout
    from bucketscribe.pipeline.ports import PipelinePorts
    from bucketscribe.profiles import ProfileSet
    from tests.fakes import FakeProvider, InMemoryJobStore, InMemoryStorage

    db = client("dynamodb", aws)
    db.create_table(
        TableName="idempotency",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
    )
    provider = FakeProvider()
    ports = PipelinePorts(
        storage=InMemoryStorage(),
        jobs=InMemoryJobStore(),
        providers={"sis": SlowProvider(provider, 0.5)},
        signer=CallbackSigner(b"integration-secret-0123456789"),
        layout=OutputLayout(),
        profiles=ProfileSet(),
        callback_base_url="https://cb.example.com",
        clock=Clock(),
    )
    ports.storage.add("recordings", "incoming/a.wav", tone_wav(1))
    info = ports.storage.head("recordings", "incoming/a.wav")
    upload = ObjectRef(bucket="recordings", key="incoming/a.wav", etag=info.etag)
    guard = GuardedSubmitter(ports, table_name="idempotency", dynamodb_client=db)
    guard.register_lambda_context(LocalLambdaContext("test", timeout_s=60))
    return guard, upload, provider


def test_concurrent_copies_of_an_event_submit_once(guarded):
    submit, upload, provider = guarded
    outcomes: list[object] = []

    def run() -> None:
        try:
            outcomes.append(submit(upload).outcome)
        except IdempotencyAlreadyInProgressError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    for thread in threads:
        thread.join(timeout=10)
    assert sorted(map(str, outcomes)) == sorted(
        ["SUBMITTED", "IdempotencyAlreadyInProgressError", "IdempotencyAlreadyInProgressError"]
    )
    assert len(provider.submissions) == 1
    # A later redelivery gets the saved result without touching the provider.
    assert submit(upload).outcome is UploadOutcome.SUBMITTED
    assert len(provider.submissions) == 1


def test_a_retry_is_not_remembered(guarded):
    submit, upload, provider = guarded
    provider.submit_error = ProviderError("SIS.0312", "busy", retryable=True)
    with pytest.raises(SubmitLater):
        submit(upload)
    provider.submit_error = None
    assert submit(upload).outcome is UploadOutcome.SUBMITTED
    assert len(provider.submissions) == 1

"""An upload's webhook arrives signed, end to end on the local stack (both clouds' shapes).

The stack is given a default-profile webhook the way ``bucketscribe up`` takes one
(BUCKETSCRIBE_WEBHOOK_URL and BUCKETSCRIBE_WEBHOOK_SECRET, here through its options): every
upload's end is POSTed by the real handlers to a receiver on 127.0.0.1, which checks it with the
``standardwebhooks`` package's own verifier, as a user's receiver would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from bucketscribe_local.stack import LocalStack
from standardwebhooks import Webhook

from bucketscribe.domain.job import JobState
from tests.audio import tone_wav
from tests.e2e.conftest import stack_options
from tests.e2e.stack_calls import TIMEOUT_S, http, transcribe
from tests.waiting import wait_until
from tests.webhook_receiver import SECRET, WebhookReceiver

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture(scope="module", params=["aws", "huawei"])
def told_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, receiver: WebhookReceiver
) -> Iterator[LocalStack]:
    options = stack_options(tmp_path_factory.mktemp(f"webhooks-{request.param}"), request.param)
    options = options.model_copy(update={"webhook_url": receiver.url, "webhook_secret": SECRET})
    with LocalStack(options) as running:
        yield running


def test_an_uploads_webhook_arrives_signed_and_names_its_outputs(
    told_stack: LocalStack, receiver: WebhookReceiver
) -> None:
    key = f"incoming/webhooks/{told_stack.options.cloud} call ü.wav"
    _, job = transcribe(told_stack, key, tone_wav(1))
    assert job.state is JobState.DONE
    stored = told_stack.job(job.id)
    assert stored is not None and stored.events, "the job records no event"
    event_id = stored.events[-1].id

    def arrived() -> list[dict[str, object]]:
        return [
            Webhook(SECRET).verify(a.body, a.headers)
            for a in receiver.received()
            if a.headers.get("webhook-id") == event_id
        ]

    wait_until(arrived, timeout_s=TIMEOUT_S, what=f"the webhook of job {job.id}")
    (payload,) = arrived()
    assert payload["type"] == "transcript.completed"
    data = payload["data"]
    assert isinstance(data, dict)
    assert (data["job_id"], data["key"], data["state"]) == (job.id, key, "DONE")
    assert data["outputs"] and set(data["outputs"]) <= set(told_stack.list_keys("transcripts/webhooks/"))


def test_the_status_api_shows_the_delivery_without_the_receiver_or_the_secret(
    told_stack: LocalStack, receiver: WebhookReceiver
) -> None:
    _, job = transcribe(told_stack, f"incoming/webhooks/{told_stack.options.cloud} status.wav", tone_wav(1))

    def delivered() -> bool:
        stored = told_stack.job(job.id)
        deliveries = stored.events[-1].deliveries if stored and stored.events else []
        return [d.state.value for d in deliveries] == ["DELIVERED"]

    wait_until(delivered, timeout_s=TIMEOUT_S, what="the delivery recorded")
    headers = {"Authorization": f"Bearer {told_stack.status_token}"}
    status, view = http("GET", f"{told_stack.callback_url}/jobs/{job.id}", headers=headers)
    assert status == 200
    (event,) = view["events"]
    assert event["type"] == "transcript.completed"
    assert [(d["channel"], d["state"], d["attempts"]) for d in event["deliveries"]] == [
        ("webhook", "DELIVERED", 1)
    ]
    text = json.dumps(view)
    assert receiver.url not in text and "127.0.0.1" not in text and SECRET not in text

"""A job's end is told (webhook, event bus) from a durable record: written with DONE/FAILED,
delivered by the worker that ended the job, then by the reconciler when due, with backoff, for
24 h; every attempt of an event with the same id and body. The ports here are fakes: the wire
(signatures, addresses, retries against a real receiver) is tests/integration/test_webhooks.py's."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.job_events import Channel, DeliveryState, EventType, JobEvent
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import complete_task
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.redrive import redrive_job
from bucketscribe.pipeline.status import JobView
from bucketscribe.pipeline.steps.notify import DELIVERY_CLAIM, announced, deliver_due
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.webhooks import WebhookRefused
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, FakeWebhooks, InMemoryEventBus, known
from tests.profiles import profile

pytestmark = pytest.mark.unit

BUCKET = "recordings"
HOOK = "https://hooks.example.com/bucketscribe?route=transcripts"


@pytest.fixture
def webhooks(ports: FakePorts) -> FakeWebhooks:
    sender = FakeWebhooks()
    ports.webhooks = sender
    ports.profiles = ProfileSet(
        profiles=[
            profile(webhook_url=HOOK, webhook_secret_name="hooks-signing-secret"),
            profile(name="quiet", prefix="quiet/"),
        ]
    )
    return sender


@pytest.fixture
def bus(ports: FakePorts) -> InMemoryEventBus:
    events = InMemoryEventBus()
    ports.event_bus = events
    return events


@pytest.fixture
def metrics(ports: FakePorts) -> list[str]:
    counted: list[str] = []
    ports.count = lambda name, value: counted.extend([name] * value)
    return counted


def submitted(ports: FakePorts, key: str = "incoming/a.wav") -> Job:
    ports.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    return known(ports.jobs.get(result.job_id), "the submitted job")


def transcript() -> Transcript:
    return Transcript(provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text="hi")])


def finished(ports: FakePorts, provider: FakeProvider, key: str = "incoming/a.wav") -> Job:
    job = submitted(ports, key)
    provider.finish(job.provider_task_id, transcript())
    (completion,) = complete_task("sis", known(job.provider_task_id), ports)
    return known(completion.job, "the finished job")


def failed(ports: FakePorts, provider: FakeProvider) -> Job:
    job = submitted(ports)
    provider.fail(job.provider_task_id, JobError(code="SIS.0001", message="the audio is silent"))
    (completion,) = complete_task("sis", known(job.provider_task_id), ports)
    return known(completion.job, "the failed job")


def event_of(job: Job) -> JobEvent:
    assert job.events, "the job records no event"
    return job.events[-1]


def reconcile_at(ports: FakePorts, after: timedelta) -> None:
    ports.clock.now += after
    reconcile(ports)


def test_a_finished_job_is_told_once_to_its_webhook_and_the_bus_and_records_it(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks, bus: InMemoryEventBus
) -> None:
    job = finished(ports, provider)
    event = event_of(job)
    assert event.type is EventType.COMPLETED
    assert [(url, secret, event_id) for url, secret, event_id, _ in webhooks.sent] == [
        (HOOK, "hooks-signing-secret", event.id)
    ]
    body = json.loads(webhooks.sent[0][3])
    assert body["type"] == "transcript.completed"
    data = body["data"]
    assert (data["job_id"], data["bucket"], data["key"], data["state"]) == (
        job.id,
        BUCKET,
        "incoming/a.wav",
        "DONE",
    )
    assert data["outputs"] == job.outputs and data["outputs"]
    assert data["provider"] == "sis" and data["duration_ms"] == job.audio_ms and data["error"] is None
    assert [document["id"] for document in bus.documents] == [event.id]
    assert bus.documents[0]["data"] == data
    stored = known(ports.jobs.get(job.id))
    assert {d.channel: d.state for d in event_of(stored).deliveries} == {
        Channel.WEBHOOK: DeliveryState.DELIVERED,
        Channel.EVENT_BUS: DeliveryState.DELIVERED,
    }
    assert stored.next_delivery_at is None
    assert ports.jobs.deliveries_due(ports.clock.now + timedelta(days=2), limit=10) == []


def test_the_event_is_written_in_the_same_write_as_done_and_the_outputs_exist_when_it_is_sent(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    seen: list[tuple[JobState, list[str]]] = []

    def receiver(event: JobEvent) -> None:
        stored = known(ports.jobs.get(event.data.job_id))
        present = [key for key in event.data.outputs if ports.storage.head(BUCKET, key) is not None]
        seen.append((stored.state, present))
        # The record already owes this event: a worker dying here leaves it to the reconciler.
        assert event_of(stored).id == event.id
        assert stored.next_delivery_at == event.timestamp + DELIVERY_CLAIM

    webhooks.on_send = receiver
    job = finished(ports, provider)
    assert seen == [(JobState.DONE, job.outputs)]


def test_a_failed_job_is_told_with_its_error_and_report_and_no_outputs(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    job = failed(ports, provider)
    assert job.state is JobState.FAILED
    body = json.loads(webhooks.sent[0][3])
    assert body["type"] == "transcript.failed"
    data = body["data"]
    assert data["error"]["code"] == "SIS.0001" and data["outputs"] == [] and data["coverage"] is None
    assert data["error_report"] == "transcripts/a.wav.error.json"
    assert ports.storage.head(BUCKET, data["error_report"]) is not None


def test_a_failed_delivery_is_retried_by_the_reconciler_when_due_with_the_same_id_and_body(
    ports: FakePorts,
    provider: FakeProvider,
    webhooks: FakeWebhooks,
    bus: InMemoryEventBus,
    metrics: list[str],
) -> None:
    webhooks.fail_next(2)
    bus.refuse = 1
    job = finished(ports, provider)
    event = event_of(known(ports.jobs.get(job.id)))
    webhook = known(event.delivery(Channel.WEBHOOK))
    assert (webhook.state, webhook.attempts, webhook.last_error) == (
        DeliveryState.PENDING,
        1,
        "the receiver answered HTTP 500",
    )
    assert webhook.next_attempt_at == ports.clock.now + timedelta(minutes=1)
    assert metrics == ["WebhookDeliveriesFailed", "EventPublishesFailed"]

    reconcile_at(ports, timedelta(seconds=30))  # not due yet
    assert len(webhooks.sent) == 1 and bus.documents == []
    reconcile_at(ports, timedelta(seconds=30))  # due: the webhook fails again, the bus takes it
    assert len(webhooks.sent) == 2 and [d["id"] for d in bus.documents] == [event.id]
    webhook = known(event_of(known(ports.jobs.get(job.id))).delivery(Channel.WEBHOOK))
    assert (webhook.attempts, webhook.next_attempt_at) == (2, ports.clock.now + timedelta(minutes=5))
    reconcile_at(ports, timedelta(minutes=5))
    assert len(webhooks.sent) == 3
    assert {(event_id, body) for _, _, event_id, body in webhooks.sent} == {(event.id, event.body())}
    stored = event_of(known(ports.jobs.get(job.id)))
    assert all(d.state is DeliveryState.DELIVERED for d in stored.deliveries)
    assert metrics == ["WebhookDeliveriesFailed", "EventPublishesFailed", "WebhookDeliveriesFailed"]


def test_a_receiver_that_never_answers_is_tried_on_the_schedule_for_24_hours_then_given_up(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    webhooks.fail_next(100, "hooks.example.com did not answer within 5 s")
    job = finished(ports, provider)
    ended = known(job.finished_at)
    attempts_at = [ended]
    # The reconciler runs every 5 minutes for 25 hours.
    for _ in range(25 * 12):
        before = len(webhooks.sent)
        reconcile_at(ports, timedelta(minutes=5))
        if len(webhooks.sent) > before:
            attempts_at.append(ports.clock.now)
    offsets = [round((at - ended) / timedelta(minutes=1)) for at in attempts_at]
    # Due at 1 min, 6 min, 36 min, 2.6 h, 7.6 h, 17.6 h and at the window's end, each taken by the
    # next run of the reconciler (every 5 minutes).
    assert offsets == [0, 5, 10, 40, 160, 460, 1060, 1440]
    webhook = known(event_of(known(ports.jobs.get(job.id))).delivery(Channel.WEBHOOK))
    assert (webhook.state, webhook.attempts, webhook.next_attempt_at) == (DeliveryState.FAILED, 8, None)
    assert ports.jobs.deliveries_due(ports.clock.now + timedelta(days=30), limit=10) == []


def test_a_refused_address_is_given_up_at_once(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    webhooks.failures.append(
        WebhookRefused("refused: hooks.example.com resolves to 10.0.0.7, a private address")
    )
    job = finished(ports, provider)
    webhook = known(event_of(known(ports.jobs.get(job.id))).delivery(Channel.WEBHOOK))
    assert (webhook.state, webhook.attempts) == (DeliveryState.FAILED, 1)
    assert "10.0.0.7" in (webhook.last_error or "")
    reconcile_at(ports, timedelta(hours=1))
    assert len(webhooks.sent) == 1


def test_a_worker_that_died_after_the_final_write_leaves_the_event_to_the_reconciler(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    job = submitted(ports)
    now = ports.clock.now
    # The finishing write with its event, and nothing after it (the worker died there).
    done = announced(job.fail(now, JobError(code="X", message="stopped")), ports, error_report="r.json")
    assert ports.jobs.save(done)
    reconcile_at(ports, DELIVERY_CLAIM - timedelta(seconds=1))  # the dead worker's claim holds
    assert webhooks.sent == []
    reconcile_at(ports, timedelta(seconds=1))
    assert [event_id for _, _, event_id, _ in webhooks.sent] == [event_of(done).id]


def test_of_two_reconcilers_only_the_one_whose_claim_was_written_makes_the_attempt(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    webhooks.fail_next(1)
    job = finished(ports, provider)
    ports.clock.now += timedelta(minutes=1)
    overlapping: list[int] = []
    # While the first run is sending, a second run looks at the same moment: the claim is written.
    webhooks.on_send = lambda event: overlapping.append(deliver_due(ports).delivered)
    report = deliver_due(ports)
    assert (report.delivered, overlapping) == (1, [0])
    assert len(webhooks.sent) == 2
    assert known(event_of(known(ports.jobs.get(job.id))).delivery(Channel.WEBHOOK)).attempts == 2


def test_a_profile_without_a_webhook_and_no_bus_records_no_event_and_costs_no_write(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    quiet = finished(ports, provider, key="incoming/quiet/b.wav")
    assert quiet.events == [] and webhooks.sent == []
    loud = finished(ports, provider, key="incoming/c.wav")
    # The webhook's outcome is one write more than the quiet job's finish took.
    assert len(loud.events) == 1 and loud.version == quiet.version + 1


def test_a_redriven_job_tells_its_new_end_with_a_new_id(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    job = failed(ports, provider)
    redrive_job(job.id, ports.jobs, reason="try again", now=ports.clock.now)
    reconcile(ports)  # submits it again
    again = known(ports.jobs.get(job.id))
    provider.finish(again.provider_task_id, transcript())
    (completion,) = complete_task("sis", known(again.provider_task_id), ports)
    ended = known(completion.job)
    assert [event.type for event in ended.events] == [EventType.FAILED, EventType.COMPLETED]
    ids = [event_id for _, _, event_id, _ in webhooks.sent]
    assert ids == [event.id for event in ended.events] and len(set(ids)) == 2


def test_the_status_view_shows_each_delivery_and_nothing_secret(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    webhooks.fail_next(1, "the receiver answered HTTP 503")
    job = finished(ports, provider)
    view = JobView.of(known(ports.jobs.get(job.id))).model_dump(mode="json")
    (event,) = view["events"]
    assert event["type"] == "transcript.completed" and event["id"] == job.events[-1].id
    (delivery,) = event["deliveries"]
    assert (delivery["channel"], delivery["state"], delivery["attempts"]) == ("webhook", "PENDING", 1)
    assert delivery["last_error"] == "the receiver answered HTTP 503" and delivery["next_attempt_at"]
    text = json.dumps(view)
    assert "hooks.example.com" not in text and "hooks-signing-secret" not in text


def test_a_result_after_the_deadline_tells_completed_after_failed(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    job = submitted(ports)
    reconcile_at(ports, ports.limits.job_deadline + timedelta(minutes=1))
    assert known(ports.jobs.get(job.id)).state is JobState.FAILED
    provider.finish(job.provider_task_id, transcript())
    (completion,) = complete_task("sis", known(job.provider_task_id), ports)
    assert known(completion.job).state is JobState.DONE
    types = [json.loads(body)["type"] for _, _, _, body in webhooks.sent]
    assert types == ["transcript.failed", "transcript.completed"]


def test_an_event_owed_when_the_job_is_re_driven_waits_for_its_next_end_then_goes(
    ports: FakePorts, provider: FakeProvider, webhooks: FakeWebhooks
) -> None:
    webhooks.fail_next(1)
    job = failed(ports, provider)
    owed = event_of(job).id
    redrive_job(job.id, ports.jobs, reason="again", now=ports.clock.now)
    reconcile_at(ports, timedelta(minutes=5))  # submits it again; the owed event is not touched
    again = known(ports.jobs.get(job.id))
    assert again.state is JobState.SUBMITTED and [e for _, _, e, _ in webhooks.sent] == [owed]
    # Even an index that still lists the job as it was (finished, owing) gets nothing sent now.
    lagging = ports.jobs.deliveries_due
    ports.jobs.deliveries_due = lambda now, *, limit: [job]
    assert deliver_due(ports).delivered == 0 and len(webhooks.sent) == 1
    ports.jobs.deliveries_due = lagging
    provider.finish(again.provider_task_id, transcript())
    complete_task("sis", known(again.provider_task_id), ports)
    reconcile_at(ports, timedelta(minutes=5))
    ended = known(ports.jobs.get(job.id))
    sent = [event_id for _, _, event_id, _ in webhooks.sent]
    assert sent == [owed, ended.events[-1].id, owed]
    assert all(d.state is DeliveryState.DELIVERED for e in ended.events for d in e.deliveries)

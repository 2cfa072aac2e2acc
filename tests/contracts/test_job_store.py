"""The job store's contract, passed by the in-memory fake and the DynamoDB adapter (boto3 against
moto server) alike: the unit tests' fake behaves like the real thing.

GeminiDB (the Huawei cloud's job store) is the same adapter over GeminiDB's DynamoDB-compatible
API, built the way the Huawei cloud builds it; its run records every request the adapter sends and
fails the test on any that GeminiDB's documented subset does not take (``tests/geminidb.py``).
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from bucketscribe.clouds.aws.job_store import DynamoJobStore, create_jobs_table
from bucketscribe.clouds.huawei import CLOUD as HUAWEI
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.job_events import (
    Channel,
    DeliveryState,
    EventDelivery,
    EventType,
    JobEvent,
    TranscriptEventData,
)
from bucketscribe.domain.media_routing import MediaProbe
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import NoSecretStore
from bucketscribe.settings import Settings
from tests.fakes import InMemoryJobStore
from tests.geminidb import geminidb_violations
from tests.integration.conftest import client

pytestmark = pytest.mark.integration
NOW = utc_now()


class SentRequests:
    """Every DynamoDB request a client sends, as it goes to serialisation."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))


@pytest.fixture(params=["memory", "dynamodb", "geminidb"])
def store(
    request: pytest.FixtureRequest, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[JobStore]:
    if request.param == "memory":
        yield InMemoryJobStore()
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    create_jobs_table(client("dynamodb", endpoint), unique_name)
    if request.param == "dynamodb":
        yield DynamoJobStore(unique_name, client("dynamodb", endpoint))
        return
    monkeypatch.setenv("BUCKETSCRIBE_JOBS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("BUCKETSCRIBE_JOBS_REGION", "us-east-1")
    built = HUAWEI.job_store(Settings(jobs_table=unique_name), NoSecretStore())
    assert isinstance(built, DynamoJobStore)  # GeminiDB speaks the DynamoDB wire
    sent = SentRequests()
    built.client.meta.events.register("before-parameter-build.dynamodb.*", sent)
    yield built
    assert sent.calls, "the test sent GeminiDB nothing to check"
    violations = [
        f"{operation}: {problem}"
        for operation, params in sent.calls
        for problem in geminidb_violations(operation, params)
    ]
    assert violations == [], "\n".join(violations)


def job(key: str = "incoming/a.wav", etag: str = "e1", *, bucket: str = "b", at: datetime = NOW) -> Job:
    return Job.for_upload(
        ObjectRef(bucket=bucket, key=key, etag=etag), profile="default", provider="sis", model=None, now=at
    )


def test_create_is_conditional_on_the_upload_identity(store: JobStore) -> None:
    first = job()
    assert store.create(first) is True
    assert store.create(job()) is False  # the same upload again
    assert store.create(job(etag="e2")) is True  # a re-upload is a new job
    assert store.get(first.id) == first
    assert store.get("nope") is None


def test_a_job_reads_back_exactly_as_it_was_written(store: JobStore) -> None:
    """Everything a job carries survives the store: attempts, their tasks and errors, the probe,
    times to the microsecond, keys in any script."""
    stored = job("incoming/a b+c/ünï côde.wav", at=NOW.replace(microsecond=123_456))
    store.create(stored)
    claimed = stored.claim(NOW, until=NOW + timedelta(minutes=5), owner="w1")
    probe = MediaProbe(
        container="wav",
        codec="pcm_s16le",
        channels=2,
        sample_rate=8000,
        duration_ms=61_500,
        size_bytes=984_044,
    )
    routed = claimed.model_copy(update={"media": probe})
    attempt = routed.start_attempt(NOW, lease_until=NOW + timedelta(minutes=5), owner="w1")
    assert store.save(claimed) and store.save(attempt)
    assert store.get(stored.id) == attempt
    failed = attempt.fail(NOW + timedelta(seconds=1), JobError(code="SIS.0535", message="音频无法解码"))
    assert store.save(failed)
    assert store.get(stored.id) == failed


def test_writes_go_only_over_the_version_they_were_derived_from(store: JobStore) -> None:
    stored = job()
    store.create(stored)
    claimed = stored.claim(NOW, until=NOW + timedelta(minutes=5), owner="w1")
    assert store.save(claimed) is True
    assert store.save(claimed) is False  # the same change twice: the second is stale
    stale = stored.claim(NOW, until=NOW + timedelta(minutes=9), owner="w2")  # made from the old copy
    assert store.save(stale) is False
    assert store.get(stored.id) == claimed


def test_a_job_never_created_cannot_be_saved(store: JobStore) -> None:
    """``save`` changes a stored job; it never creates one (that is ``create``, conditional on the upload)."""
    never_created = job("incoming/never.wav").claim(NOW, until=NOW + timedelta(minutes=5), owner="w1")
    assert store.save(never_created) is False
    assert store.get(never_created.id) is None


def test_of_racing_writers_exactly_one_wins(store: JobStore) -> None:
    stored = job()
    store.create(stored)
    wins: list[bool] = []
    barrier = threading.Barrier(4)

    def claim(minutes: int) -> None:
        barrier.wait()
        wins.append(store.save(stored.claim(NOW, until=NOW + timedelta(minutes=minutes), owner=str(minutes))))

    threads = [threading.Thread(target=claim, args=(m,)) for m in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]


def test_due_finds_unfinished_jobs_by_next_check_through_the_index(store: JobStore) -> None:
    early = job("incoming/1.wav")
    later = job("incoming/2.wav").check_later(NOW, at=NOW + timedelta(hours=1))
    finished = (
        job("incoming/3.wav").claim(NOW, until=NOW, owner="w").start_attempt(NOW, lease_until=NOW, owner="w")
    )
    finished = finished.fail(NOW, JobError(code="X", message="x"))
    for j in (early, later, finished):
        store.create(j)
    assert [j.id for j in store.due(NOW, limit=10)] == [early.id]
    assert [j.id for j in store.due(NOW + timedelta(hours=2), limit=10)] == [early.id, later.id]
    assert len(store.due(NOW + timedelta(hours=2), limit=1)) == 1


def ended_owing(key: str, *, next_attempt_at: datetime | None, state: DeliveryState) -> Job:
    """A FAILED job whose event has one delivery in ``state``, next due at ``next_attempt_at``."""
    failed = job(key).claim(NOW, until=NOW, owner="w").start_attempt(NOW, lease_until=NOW, owner="w")
    failed = failed.fail(NOW, JobError(code="X", message="x"))
    data = TranscriptEventData(
        job_id=failed.id,
        state="FAILED",
        bucket="b",
        key=key,
        profile="default",
        provider="sis",
        finished_at=NOW,
    )
    delivery = EventDelivery(channel=Channel.WEBHOOK, state=state, next_attempt_at=next_attempt_at)
    event = JobEvent(
        id=f"msg_{failed.id}",
        type=EventType.FAILED,
        timestamp=NOW,
        data=data,
        deliver_until=NOW + timedelta(days=1),
        deliveries=[delivery],
    )
    return failed.announce(event)


def test_deliveries_due_finds_finished_jobs_owing_an_event_apart_from_due_jobs(store: JobStore) -> None:
    owed = ended_owing(
        "incoming/4.wav", next_attempt_at=NOW - timedelta(minutes=1), state=DeliveryState.PENDING
    )
    later = ended_owing(
        "incoming/5.wav", next_attempt_at=NOW + timedelta(hours=1), state=DeliveryState.PENDING
    )
    delivered = ended_owing("incoming/6.wav", next_attempt_at=None, state=DeliveryState.DELIVERED)
    unfinished = job("incoming/7.wav")
    for j in (owed, later, delivered, unfinished):
        store.create(j)
    assert [j.id for j in store.deliveries_due(NOW, limit=10)] == [owed.id]
    two_hours = NOW + timedelta(hours=2)
    assert [j.id for j in store.deliveries_due(two_hours, limit=10)] == [owed.id, later.id]
    assert len(store.deliveries_due(two_hours, limit=1)) == 1
    # The reconciler's own due jobs and the deliveries owed never mix.
    assert [j.id for j in store.due(two_hours, limit=10)] == [unfinished.id]
    # Once delivered (written like any change), the job is owed nothing.
    settled = owed.with_deliveries(
        NOW,
        [
            e.model_copy(update={"deliveries": [d.model_copy(update={"state": DeliveryState.DELIVERED})]})
            for e in owed.events
            for d in e.deliveries
        ],
    )
    assert store.save(settled)
    assert [j.id for j in store.deliveries_due(two_hours, limit=10)] == [later.id]
    assert store.get(owed.id) == settled


def test_task_bindings_keep_the_first_binding_and_add_other_jobs(store: JobStore) -> None:
    assert store.bind_task("dashscope", "t-1", {"b": "host/b.wav", "a": "host/a.wav"}) == {
        "a": "host/a.wav",
        "b": "host/b.wav",
    }
    assert store.bind_task("dashscope", "t-1", {"a": "host/other.wav", "c": "host/c.wav"}) == {
        "a": "host/a.wav",
        "b": "host/b.wav",
        "c": "host/c.wav",
    }
    assert store.task_files("dashscope", "t-1") == {"a": "host/a.wav", "b": "host/b.wav", "c": "host/c.wav"}
    assert store.task_files("dashscope", "t-2") == {}
    assert store.task_files("sis", "t-1") == {}  # a task id is one provider's: another's is another task
    # A one-file task bound to a job is not given to another; the job it carries may bind it again.
    assert store.bind_task("sis", "s-1", {"x": "f"}, exclusive=True) == {"x": "f"}
    assert store.bind_task("sis", "s-1", {"y": "f"}, exclusive=True) == {"x": "f"}
    assert store.bind_task("sis", "s-1", {"x": "f"}, exclusive=True) == {"x": "f"}
    assert store.due(NOW + timedelta(days=1), limit=10) == []  # task records are no jobs


def test_jobs_are_found_by_their_upload_newest_first(store: JobStore) -> None:
    first = job("incoming/same.wav", etag="e1", at=NOW)
    second = job("incoming/same.wav", etag="e2", at=NOW + timedelta(minutes=1))
    third = job("incoming/same.wav", etag="e3", at=NOW + timedelta(minutes=2))
    elsewhere = job("incoming/same.wav", etag="e1", bucket="other")
    for j in (first, second, third, elsewhere):
        store.create(j)
    assert [j.id for j in store.for_source("b", "incoming/same.wav")] == [third.id, second.id, first.id]
    assert [j.id for j in store.for_source("b", "incoming/same.wav", limit=2)] == [third.id, second.id]
    assert store.for_source("b", "incoming/none.wav") == []


def test_an_operator_listing_filters_by_state_time_and_key(store: JobStore) -> None:
    old = job("incoming/calls/old.wav", at=NOW - timedelta(days=2))
    new = job("incoming/calls/new.wav", at=NOW)
    other = job("incoming/meetings/m.wav", at=NOW)
    for j in (old, new, other):
        store.create(j)
    failed = new.fail(NOW + timedelta(minutes=1), JobError(code="X", message="x"))
    assert store.save(failed)
    listed = store.listing(state=None, since=None, key_prefix=None, limit=10)
    assert [j.id for j in listed] == [failed.id, other.id, old.id]
    assert [j.id for j in store.listing(state=None, since=None, key_prefix=None, limit=2)] == [
        failed.id,
        other.id,
    ]
    assert [j.id for j in store.listing(state=JobState.FAILED, since=None, key_prefix=None, limit=10)] == [
        new.id
    ]
    recent = store.listing(state=JobState.ACCEPTED, since=NOW - timedelta(hours=1), key_prefix=None, limit=10)
    assert [j.id for j in recent] == [other.id]
    calls = store.listing(state=None, since=None, key_prefix="b/incoming/calls/", limit=10)
    assert {j.id for j in calls} == {old.id, new.id}


def test_a_lease_is_held_by_one_owner_until_its_time_runs_out_or_it_is_given_up(store: JobStore) -> None:
    """One reconciler run at a time: the second asker is refused while the first holds the lease,
    takes it once the holder's time has run out, and a holder that finishes early frees it."""
    until = NOW + timedelta(minutes=5)
    assert store.take_lease("reconciler", owner="run-1", until=until, now=NOW)
    assert not store.take_lease("reconciler", owner="run-2", until=until, now=NOW + timedelta(minutes=1))
    assert store.take_lease("other-shard", owner="run-2", until=until, now=NOW)  # leases are by name
    # The first run died: its time runs out and the next run takes the lease over.
    later = until + timedelta(seconds=1)
    assert store.take_lease("reconciler", owner="run-2", until=later + timedelta(minutes=5), now=later)
    store.end_lease("reconciler", owner="run-1")  # the dead run's late goodbye changes nothing
    assert not store.take_lease("reconciler", owner="run-3", until=later, now=later)
    store.end_lease("reconciler", owner="run-2")
    assert store.take_lease("reconciler", owner="run-3", until=later + timedelta(minutes=5), now=later)

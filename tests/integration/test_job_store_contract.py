"""The job store's contract, passed by the in-memory fake and the DynamoDB adapter (boto3 against
moto server) alike: the unit tests' fake behaves like the real thing."""

import threading
from datetime import datetime, timedelta

import pytest

from bucketscribe.clouds.aws.job_store import DynamoJobStore, create_jobs_table
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobError, JobState
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.ports.job_store import JobStore
from tests.fakes import InMemoryJobStore
from tests.integration.conftest import client

pytestmark = pytest.mark.integration
NOW = utc_now()


@pytest.fixture(params=["memory", "dynamodb"])
def store(request: pytest.FixtureRequest) -> JobStore:
    if request.param == "memory":
        return InMemoryJobStore()
    endpoint = request.getfixturevalue("aws")
    db = client("dynamodb", endpoint)
    create_jobs_table(db, "jobs")
    return DynamoJobStore("jobs", db)


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


def test_writes_go_only_over_the_version_they_were_derived_from(store: JobStore) -> None:
    stored = job()
    store.create(stored)
    claimed = stored.claim(NOW, until=NOW + timedelta(minutes=5), owner="w1")
    assert store.save(claimed) is True
    assert store.save(claimed) is False  # the same change twice: the second is stale
    stale = stored.claim(NOW, until=NOW + timedelta(minutes=9), owner="w2")  # made from the old copy
    assert store.save(stale) is False
    assert store.get(stored.id) == claimed


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
    assert len(store.due(NOW + timedelta(hours=2), limit=10)) == 2
    assert len(store.due(NOW + timedelta(hours=2), limit=1)) == 1


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
    assert store.task_files("dashscope", "t-2") == {}
    # A one-file task bound to a job is not given to another.
    assert store.bind_task("sis", "s-1", {"x": "f"}, exclusive=True) == {"x": "f"}
    assert store.bind_task("sis", "s-1", {"y": "f"}, exclusive=True) == {"x": "f"}
    assert store.due(NOW + timedelta(days=1), limit=10) == []


def test_jobs_are_found_by_their_upload_newest_first(store: JobStore) -> None:
    first = job("incoming/same.wav", etag="e1", at=NOW)
    second = job("incoming/same.wav", etag="e2", at=NOW + timedelta(minutes=1))
    elsewhere = job("incoming/same.wav", etag="e1", bucket="other")
    for j in (first, second, elsewhere):
        store.create(j)
    assert [j.id for j in store.for_source("b", "incoming/same.wav")] == [second.id, first.id]
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
    assert [j.id for j in store.listing(state=JobState.FAILED, since=None, key_prefix=None, limit=10)] == [
        new.id
    ]
    recent = store.listing(state=JobState.ACCEPTED, since=NOW - timedelta(hours=1), key_prefix=None, limit=10)
    assert [j.id for j in recent] == [other.id]
    calls = store.listing(state=None, since=None, key_prefix="b/incoming/calls/", limit=10)
    assert {j.id for j in calls} == {old.id, new.id}

"""The DynamoDB job store over the real wire: boto3 against moto server."""

from datetime import timedelta

import pytest

from bucketscribe.jobs.dynamodb import DynamoJobStore, create_jobs_table
from bucketscribe.model import Job, JobState, ObjectRef, utc_now
from tests.integration.conftest import client

pytestmark = pytest.mark.integration


@pytest.fixture
def store(aws):
    db = client("dynamodb", aws)
    create_jobs_table(db, "jobs")
    return DynamoJobStore("jobs", db)


def job(key="incoming/a.wav", etag="e1"):
    return Job.for_upload(ObjectRef(bucket="b", key=key, etag=etag), profile="default", provider="sis")


def test_create_is_conditional_on_the_upload_identity(store):
    first = job()
    assert store.create(first) is True
    assert store.create(job()) is False  # the same upload again
    assert store.create(job(etag="e2")) is True  # a re-upload is a new job
    assert store.get(first.id) == first


def test_state_changes_are_guarded(store):
    j = job()
    store.create(j)
    submitted = j.model_copy(update={"state": JobState.SUBMITTED, "provider_task_id": "t1"})
    assert store.replace(submitted, expected=[JobState.ACCEPTED]) is True
    assert store.replace(submitted, expected=[JobState.ACCEPTED]) is False
    done = submitted.model_copy(update={"state": JobState.DONE})
    assert store.replace(done, expected=[JobState.SUBMITTED]) is True
    assert store.get(j.id).state is JobState.DONE
    assert store.replace(j, expected=[JobState.SUBMITTED]) is False
    assert store.get("nope") is None


def test_due_finds_unfinished_jobs_by_next_check_through_the_index(store):
    now = utc_now()
    early = job("incoming/1.wav").model_copy(
        update={"state": JobState.SUBMITTED, "next_check_at": now - timedelta(minutes=5)}
    )
    later = job("incoming/2.wav").model_copy(
        update={"state": JobState.SUBMITTED, "next_check_at": now + timedelta(hours=1)}
    )
    finished = job("incoming/3.wav").model_copy(
        update={"state": JobState.DONE, "next_check_at": now - timedelta(hours=1)}
    )
    for j in (early, later, finished):
        store.create(j)
    assert [j.id for j in store.due(now, limit=10)] == [early.id]
    assert len(store.due(now + timedelta(hours=2), limit=10)) == 2
    assert len(store.due(now + timedelta(hours=2), limit=1)) == 1


def test_only_one_worker_can_claim_an_accepted_job(store):
    import threading

    now = utc_now()
    j = job().model_copy(update={"claimed_until": now - timedelta(seconds=1)})
    store.create(j)
    wins: list[bool] = []

    def claim() -> None:
        wins.append(store.claim(j.model_copy(update={"claimed_until": now + timedelta(minutes=2)}), now=now))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(wins) == [False, False, False, True]
    # Still claimed: nobody else gets it; after the lease it can be taken over.
    assert store.claim(j, now=now) is False
    assert store.claim(j, now=now + timedelta(minutes=3)) is True
    submitted = j.model_copy(update={"state": JobState.SUBMITTED, "claimed_until": None})
    assert store.replace(submitted, expected=[JobState.ACCEPTED])
    assert store.claim(j, now=now + timedelta(hours=1)) is False


def test_task_membership_is_recorded(store):
    store.record_task("dashscope", "t-1", {"b": "host/b.wav", "a": "host/a.wav"})
    assert store.task_files("dashscope", "t-1") == {"a": "host/a.wav", "b": "host/b.wav"}
    assert store.task_files("dashscope", "t-2") == {}
    assert store.due(utc_now() + timedelta(days=1), limit=10) == []

"""Outputs belong to the latest upload of a key: an older version that finishes (or fails) after a
newer one exists writes and deletes nothing beside it, and says why (SUPERSEDED)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bucketscribe.domain.job import JobError, JobState
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.storage import ObjectInfo
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, known

pytestmark = pytest.mark.unit

KEY = "incoming/meeting.wav"


def upload(ports: FakePorts, seconds: float) -> str:
    """Upload a version of KEY (its own bytes, so its own ETag and job) and submit it."""
    ports.storage.add("recordings", KEY, tone_wav(seconds))
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=KEY)], ports)
    ports.clock.now += timedelta(seconds=5)
    return known(result.job_id, "the upload's job")


def test_notifications_out_of_order_never_let_the_older_upload_win(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """The newer upload's job may be created first (notifications are not ordered): what stands in
    the bucket decides, not which job came first."""
    ports.storage.add("recordings", KEY, tone_wav(1))
    first = ports.storage.head("recordings", KEY)
    ports.storage.add("recordings", KEY, tone_wav(2))
    (new,) = submit_uploads([ObjectRef(bucket="recordings", key=KEY)], ports)
    ports.clock.now += timedelta(seconds=5)
    finish(ports, provider, known(new.job_id), "the second version")
    # The first upload's late notification: its ETag is trusted, so its job is created after the
    # newer one's (and may even be sent the newer bytes, the key no longer holding its own).
    old_ref = ObjectRef(bucket="recordings", key=KEY, etag=first.etag, size=first.size)
    (late,) = submit_uploads([old_ref], ports)
    assert late.job_id is not None and late.job_id != new.job_id
    ports.clock.now += ports.limits.first_check_after
    for task in provider.tasks_for(late.job_id):
        provider.finish(task, said("words of whatever the key held"))
    reconcile(ports)
    assert ports.jobs.get(new.job_id).state is JobState.DONE
    assert b"the second version" in ports.storage.get("recordings", "transcripts/meeting.wav.txt")
    # The older upload's job ends without a word beside the newer transcript.
    old = ports.jobs.get(late.job_id)
    assert old.state is JobState.SUPERSEDED and old.superseded_by == new.job_id
    assert "transcripts/meeting.wav.error.json" not in ports.storage.keys("transcripts/")


def said(words: str) -> Transcript:
    return Transcript(
        provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text=words)]
    )


def finish(ports: FakePorts, provider: FakeProvider, job_id: str, words: str) -> None:
    (task,) = provider.tasks_for(job_id)
    provider.finish(task, said(words))


def test_an_old_versions_late_result_never_replaces_the_new_transcript(
    ports: FakePorts, provider: FakeProvider
) -> None:
    old = upload(ports, 1)
    new = upload(ports, 2)
    finish(ports, provider, new, "the second version")
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert ports.jobs.get(new).state is JobState.DONE
    written = {key: ports.storage.get("recordings", key) for key in ports.storage.keys("transcripts/")}
    finish(ports, provider, old, "the first version")  # its callback was lost; the reconciler finds it
    ports.clock.now += ports.limits.max_check_interval
    reconcile(ports)
    superseded = ports.jobs.get(old)
    assert superseded.state is JobState.SUPERSEDED and superseded.superseded_by == new
    assert {
        key: ports.storage.get("recordings", key) for key in ports.storage.keys("transcripts/")
    } == written
    assert b"the second version" in ports.storage.get("recordings", "transcripts/meeting.wav.txt")


def test_an_old_version_finishing_first_still_leaves_the_key_to_the_new_one(
    ports: FakePorts, provider: FakeProvider
) -> None:
    old = upload(ports, 1)
    new = upload(ports, 2)
    finish(ports, provider, old, "the first version")
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert ports.jobs.get(old).state is JobState.SUPERSEDED
    assert ports.storage.keys("transcripts/") == []
    finish(ports, provider, new, "the second version")
    ports.clock.now += ports.limits.max_check_interval
    reconcile(ports)
    assert b"the second version" in ports.storage.get("recordings", "transcripts/meeting.wav.txt")


def test_an_old_version_that_fails_writes_no_error_report_beside_the_new_transcript(
    ports: FakePorts, provider: FakeProvider
) -> None:
    old = upload(ports, 1)
    new = upload(ports, 2)
    finish(ports, provider, new, "the second version")
    (task,) = provider.tasks_for(old)
    provider.fail(task, JobError(code="SIS.0535", message="Audio format is invalid!"))
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert ports.jobs.get(old).state is JobState.SUPERSEDED
    assert ports.jobs.get(new).state is JobState.DONE
    assert "transcripts/meeting.wav.error.json" not in ports.storage.keys("transcripts/")


def test_a_new_versions_transcript_removes_the_old_versions_error_report(
    ports: FakePorts, provider: FakeProvider
) -> None:
    old = upload(ports, 1)
    (task,) = provider.tasks_for(old)
    provider.fail(task, JobError(code="SIS.0535", message="Audio format is invalid!"))
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert "transcripts/meeting.wav.error.json" in ports.storage.keys("transcripts/")
    new = upload(ports, 2)
    finish(ports, provider, new, "the second version")
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert ports.jobs.get(new).state is JobState.DONE
    assert "transcripts/meeting.wav.error.json" not in ports.storage.keys("transcripts/")


def test_finishing_reads_no_error_report_only_the_upload_it_must_still_be(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = upload(ports, 1)
    finish(ports, provider, job, "only version")
    heads: list[str] = []
    real_head = ports.storage.head

    def head(bucket: str, key: str) -> ObjectInfo | None:
        heads.append(key)
        return real_head(bucket, key)

    ports.storage.head = head
    ports.clock.now += ports.limits.first_check_after
    reconcile(ports)
    assert ports.jobs.get(job).state is JobState.DONE
    assert heads == ["incoming/meeting.wav"]

import json

import pytest

from bucketscribe.model import JobError, JobState, ObjectRef, Segment, Transcript, Word
from bucketscribe.pipeline.complete import CompletionOutcome, complete_job, complete_sis_callback
from bucketscribe.pipeline.submit import submit_uploads
from tests.audio import tone_wav

pytestmark = pytest.mark.unit

BUCKET = "recordings"


def submitted(ports, key="incoming/calls/2026-11-20 agent+42.wav"):
    ports.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    return ports.jobs.get(result.job_id)


def transcript(text="hello from the provider"):
    words = [Word(start_ms=i * 300, end_ms=i * 300 + 250, text=w) for i, w in enumerate(text.split())]
    return Transcript(
        provider="sis",
        duration_ms=1000,
        segments=[Segment(start_ms=0, end_ms=words[-1].end_ms, text=text, words=words, speaker="Agent")],
        speakers=["Agent"],
    )


def test_an_authentic_callback_refetches_and_writes_the_profile_outputs(ports, provider):
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript(), raw={"status": "FINISHED", "segments": []})
    completion = complete_sis_callback(job.id, ports.signer.token_for(job.id), None, ports)
    assert completion.outcome is CompletionOutcome.DONE
    assert provider.fetches == [job.provider_task_id]
    keys = ports.storage.keys("transcripts/")
    base = "transcripts/calls/2026-11-20 agent+42.wav"
    # The "calls" profile asks for json and txt only, plus the raw provider result.
    assert keys == [f"{base}.json", f"{base}.sis.json", f"{base}.txt"]
    canonical = Transcript.model_validate_json(ports.storage.get(BUCKET, f"{base}.json"))
    assert canonical.text == "hello from the provider"
    assert canonical.source.key == job.source.key and canonical.language == "en"
    done = ports.jobs.get(job.id)
    assert done.state is JobState.DONE and done.outputs == [f"{base}.sis.json", f"{base}.json", f"{base}.txt"]


@pytest.mark.parametrize("token", [None, "", "0" * 64, "wrong"])
def test_a_callback_with_a_bad_token_is_refused_and_fetches_nothing(ports, provider, token):
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    completion = complete_sis_callback(job.id, token, None, ports)
    assert completion.outcome is CompletionOutcome.UNKNOWN_JOB
    assert provider.fetches == [] and ports.storage.keys("transcripts/") == []


def test_an_unknown_job_looks_the_same_as_a_bad_token(ports, provider):
    completion = complete_sis_callback("nope", ports.signer.token_for("nope"), None, ports)
    assert completion.outcome is CompletionOutcome.UNKNOWN_JOB and provider.fetches == []


def test_duplicate_callbacks_write_outputs_once(ports, provider):
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    token = ports.signer.token_for(job.id)
    first = complete_sis_callback(job.id, token, None, ports)
    writes = len(ports.storage.puts)
    second = complete_sis_callback(job.id, token, None, ports)
    assert (first.outcome, second.outcome) == (CompletionOutcome.DONE, CompletionOutcome.ALREADY_FINAL)
    assert len(ports.storage.puts) == writes


def test_a_callback_before_the_task_is_done_changes_nothing(ports, provider):
    job = submitted(ports)
    completion = complete_sis_callback(job.id, ports.signer.token_for(job.id), None, ports)
    assert completion.outcome is CompletionOutcome.PENDING
    assert ports.jobs.get(job.id).state is JobState.SUBMITTED


def test_a_callback_before_the_task_id_is_recorded_asks_the_provider_about_the_claimed_task(ports, provider):
    job = submitted(ports)
    task_id = job.provider_task_id
    # Simulate the race: the provider called back before we stored its task id.
    ports.jobs.jobs[job.id] = job.model_copy(update={"state": JobState.ACCEPTED, "provider_task_id": None})
    provider.finish(task_id, transcript())
    completion = complete_sis_callback(job.id, ports.signer.token_for(job.id), task_id, ports)
    assert completion.outcome is CompletionOutcome.DONE and provider.fetches == [task_id]


def test_a_failed_provider_task_fails_the_job_with_its_reason(ports, provider):
    job = submitted(ports)
    provider.fail(job.provider_task_id, JobError(code="SIS.0535", message="Audio format is invalid!"))
    completion = complete_job(job, ports)
    assert completion.outcome is CompletionOutcome.FAILED
    report = json.loads(ports.storage.get(BUCKET, "transcripts/calls/2026-11-20 agent+42.wav.error.json"))
    assert report["error"]["code"] == "SIS.0535"
    assert ports.jobs.get(job.id).error.message == "Audio format is invalid!"


def test_an_expired_provider_task_fails_the_job(ports, provider):
    job = submitted(ports)
    del provider.results[job.provider_task_id]
    assert complete_job(job, ports).outcome is CompletionOutcome.FAILED

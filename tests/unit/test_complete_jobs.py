import json
from datetime import timedelta

import pytest

from bucketscribe.domain.callback_tokens import CallbackClaim, CallbackSigner
from bucketscribe.domain.job import AttemptState, Job, JobError, JobState
from bucketscribe.domain.transcript import Segment, Transcript, Word
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import Completion, CompletionOutcome, complete_callback, complete_task
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import ProviderError
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, claim_from_callback_url, known

pytestmark = pytest.mark.unit

BUCKET = "recordings"
LOST = ProviderError("SIS.UNREACHABLE", "Read timed out", retryable=True, maybe_done=True)


def submitted(ports: FakePorts, key: str = "incoming/calls/2026-11-20 agent+42.wav") -> Job:
    ports.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    job = ports.jobs.get(result.job_id)
    assert job is not None, result
    return job


def transcript(text: str = "hello from the provider") -> Transcript:
    words = [Word(start_ms=i * 300, end_ms=i * 300 + 250, text=w) for i, w in enumerate(text.split())]
    return Transcript(
        provider="sis",
        duration_ms=1000,
        segments=[Segment(start_ms=0, end_ms=words[-1].end_ms, text=text, words=words, speaker="Agent")],
        speakers=["Agent"],
    )


def callback(
    ports: FakePorts, provider: FakeProvider, *, submission: int = -1, body_task_id: str | None = None
) -> Completion:
    """The provider calls the URL it was given in a submission (the last one by default)."""
    items, _ = provider.submissions[submission]
    _, claim = claim_from_callback_url(items[0].callback_url)
    return complete_callback(claim, lambda: body_task_id, ports)


def test_an_authentic_callback_refetches_and_writes_the_profile_outputs(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript(), raw={"status": "FINISHED", "segments": []})
    completion = callback(ports, provider)
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


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"attempt": "1", "exp": "4102444800", "token": ""},
        {"attempt": "1", "exp": "4102444800", "token": "0" * 64},
        {"attempt": "1", "exp": "4102444800", "token": "é"},  # non-ASCII: refused, never a TypeError
        {"attempt": "1", "exp": "9" * 40, "token": "x"},
        {"attempt": "-1", "exp": "1", "token": "x"},
    ],
)
def test_a_callback_with_a_bad_token_is_refused_and_fetches_nothing(
    ports: FakePorts, provider: FakeProvider, query: dict[str, str]
) -> None:
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    claim = CallbackClaim.from_query("sis", job.id, query)
    completion = complete_callback(claim, lambda: None, ports)
    assert completion.outcome is CompletionOutcome.UNKNOWN_JOB
    assert provider.fetches == [] and ports.storage.keys("transcripts/") == []


def test_a_token_stops_working_after_its_expiry(ports: FakePorts, provider: FakeProvider) -> None:
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    ports.clock.now += ports.limits.callback_token_ttl + timedelta(seconds=1)
    assert callback(ports, provider).outcome is CompletionOutcome.UNKNOWN_JOB
    assert provider.fetches == []


def test_a_token_of_one_attempt_does_not_open_another(ports: FakePorts, provider: FakeProvider) -> None:
    submitted(ports)
    _, claim = claim_from_callback_url(provider.submissions[0][0][0].callback_url)
    forged = claim.model_copy(update={"attempt": 2})
    assert complete_callback(forged, lambda: None, ports).outcome is CompletionOutcome.UNKNOWN_JOB


def test_callbacks_signed_with_the_previous_secret_work_during_a_rotation(
    ports: FakePorts, provider: FakeProvider
) -> None:
    old_signer = ports.signer
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    ports.signer = CallbackSigner(b"the-new-secret-0123456789", previous=b"unit-test-secret-0123456789")
    assert callback(ports, provider).outcome is CompletionOutcome.DONE
    ports.signer = CallbackSigner(b"the-new-secret-0123456789")  # rotation over: the old URLs stop
    assert not ports.signer.verify(
        claim_from_callback_url(provider.submissions[0][0][0].callback_url)[1], ports.clock()
    )
    assert old_signer is not ports.signer


def test_an_unknown_job_looks_the_same_as_a_bad_token(ports: FakePorts, provider: FakeProvider) -> None:
    exp = int((ports.clock() + timedelta(hours=1)).timestamp())
    token = ports.signer.token_for("sis", "nope", 1, exp)
    claim = CallbackClaim(provider="sis", job_id="nope", attempt=1, expires=exp, token=token)
    completion = complete_callback(claim, lambda: None, ports)
    assert completion.outcome is CompletionOutcome.UNKNOWN_JOB and provider.fetches == []


def test_duplicate_callbacks_write_outputs_once(ports: FakePorts, provider: FakeProvider) -> None:
    job = submitted(ports)
    provider.finish(job.provider_task_id, transcript())
    first = callback(ports, provider)
    writes = len(ports.storage.puts)
    second = callback(ports, provider)
    assert (first.outcome, second.outcome) == (CompletionOutcome.DONE, CompletionOutcome.ALREADY_FINAL)
    assert len(ports.storage.puts) == writes


def test_a_callback_before_the_task_is_done_changes_nothing(ports: FakePorts, provider: FakeProvider) -> None:
    submitted(ports)
    completion = callback(ports, provider)
    assert completion.outcome is CompletionOutcome.PENDING


def test_a_recorded_task_is_asked_about_whatever_task_the_body_names(
    ports: FakePorts, provider: FakeProvider
) -> None:
    victim = submitted(ports, "incoming/victim.wav")
    attacker = submitted(ports, "incoming/attacker.wav")
    provider.finish(victim.provider_task_id, transcript("the victim's private words"))
    completion = callback(ports, provider, body_task_id=victim.provider_task_id)  # attacker's URL
    assert completion.outcome is CompletionOutcome.PENDING  # attacker's own task, still running
    assert provider.fetches == [attacker.provider_task_id]
    assert ports.storage.keys("transcripts/") == []


def test_a_callback_naming_another_jobs_task_binds_nothing_and_fails_nothing(
    ports: FakePorts, provider: FakeProvider
) -> None:
    victim = submitted(ports, "incoming/victim.wav")
    provider.finish(victim.provider_task_id, transcript("the victim's private words"))
    # The attacker's own job never got a task recorded (its answer was lost) ...
    provider.lose_answer = LOST
    attacker = submitted(ports, "incoming/attacker.wav")
    provider.lose_answer = None
    # ... and holding that job's callback URL, it names the victim's task, then a made-up one.
    stolen = callback(ports, provider, body_task_id=victim.provider_task_id)
    made_up = callback(ports, provider, body_task_id="made-up-task")
    assert (stolen.outcome, made_up.outcome) == (CompletionOutcome.IGNORED, CompletionOutcome.IGNORED)
    assert "another job" in stolen.reason
    job = ports.jobs.get(attacker.id)
    assert job.state is JobState.SUBMITTING and job.error is None
    assert ports.storage.keys("transcripts/") == []


def test_a_task_created_outside_the_attempts_window_is_not_bound(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.lose_answer = LOST
    job = submitted(ports, "incoming/lost.wav")
    provider.lose_answer = None
    # A task of someone else's, created hours later, that no job of ours recorded.
    ports.clock.now += timedelta(hours=3)
    provider.submit([], ports.profiles.profiles[0])
    task_id = f"task-{len(provider.submissions)}"
    provider.finish(task_id, transcript("not yours"))
    completion = callback(ports, provider, submission=0, body_task_id=task_id)
    assert completion.outcome is CompletionOutcome.IGNORED and "not created while" in completion.reason
    assert ports.jobs.get(job.id).state is JobState.SUBMITTING


def test_the_callback_of_an_attempt_whose_answer_was_lost_binds_its_task_and_finishes(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.lose_answer = LOST
    job = submitted(ports, "incoming/lost.wav")
    provider.lose_answer = None
    (task_id,) = provider.tasks_for(job.id)
    provider.finish(task_id, transcript("found through the callback"))
    completion = callback(ports, provider, body_task_id=task_id)
    assert completion.outcome is CompletionOutcome.DONE
    done = ports.jobs.get(job.id)
    assert done.attempts[0].state is AttemptState.ACCEPTED and done.attempts[0].bound_by == "callback"
    assert ports.jobs.task_files("sis", task_id) == {job.id: done.attempts[0].provider_file}
    assert provider.tasks_for(job.id) == [task_id]


def test_a_late_task_of_an_abandoned_attempt_is_used_and_the_second_is_not_written_again(
    ports: FakePorts, provider: FakeProvider
) -> None:
    provider.lose_answer = LOST
    job = submitted(ports, "incoming/late.wav")
    provider.lose_answer = None
    # No callback within the evidence wait: a second attempt is made (the documented residual).
    ports.clock.now += ports.limits.evidence_wait + timedelta(seconds=1)
    report = reconcile(ports)
    assert (report.abandoned, report.submitted) == (1, 1)
    first, second = provider.tasks_for(job.id)
    provider.finish(first, transcript("the first attempt's result"))
    assert callback(ports, provider, submission=0, body_task_id=first).outcome is CompletionOutcome.DONE
    writes = len(ports.storage.puts)
    provider.finish(second, transcript("the second attempt's result"))
    assert callback(ports, provider, submission=1).outcome is CompletionOutcome.ALREADY_FINAL
    assert len(ports.storage.puts) == writes
    assert "first attempt" in ports.storage.get(BUCKET, "transcripts/late.wav.txt").decode()


def test_a_failed_provider_task_fails_the_job_with_its_reason(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    provider.fail(job.provider_task_id, JobError(code="SIS.0535", message="Audio format is invalid!"))
    completion = callback(ports, provider)
    assert completion.outcome is CompletionOutcome.FAILED
    report = json.loads(ports.storage.get(BUCKET, "transcripts/calls/2026-11-20 agent+42.wav.error.json"))
    assert report["error"]["code"] == "SIS.0535"
    assert ports.jobs.get(job.id).error.message == "Audio format is invalid!"


def test_an_expired_result_gets_one_new_attempt_while_the_upload_is_there(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    provider.expire(job.provider_task_id)
    assert callback(ports, provider).outcome is CompletionOutcome.RESUBMIT
    ports.clock.now += timedelta(seconds=1)
    assert reconcile(ports).submitted == 1
    again = ports.jobs.get(job.id)
    assert [a.state for a in again.attempts] == [AttemptState.EXPIRED, AttemptState.ACCEPTED]
    provider.expire(again.provider_task_id)  # and once more: now it fails, saying why
    assert callback(ports, provider).outcome is CompletionOutcome.FAILED
    failed = ports.jobs.get(job.id)
    assert failed.error.code == "RESULT_EXPIRED" and "expired twice" in failed.error.message


def test_an_expired_result_of_a_deleted_upload_fails_with_the_reason(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    provider.expire(job.provider_task_id)
    ports.storage.delete(BUCKET, job.source.key)
    assert callback(ports, provider).outcome is CompletionOutcome.FAILED
    assert "the upload is gone" in ports.jobs.get(job.id).error.message


def test_a_result_after_the_deadline_failure_wins_and_replaces_the_error_report(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports)
    ports.clock.now += ports.limits.job_deadline + timedelta(minutes=1)
    reconcile(ports)
    report_key = "transcripts/calls/2026-11-20 agent+42.wav.error.json"
    assert ports.jobs.get(job.id).error.code == "PROVIDER_TIMEOUT" and ports.storage.head(BUCKET, report_key)
    provider.finish(job.provider_task_id, transcript("late but good"))
    assert callback(ports, provider).outcome is CompletionOutcome.DONE
    assert ports.jobs.get(job.id).state is JobState.DONE
    assert ports.storage.head(BUCKET, report_key) is None


def test_a_success_removes_an_earlier_uploads_error_report(ports: FakePorts, provider: FakeProvider) -> None:
    key = "incoming/retry.wav"
    ports.storage.add(BUCKET, key, b"")
    submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    assert ports.storage.head(BUCKET, "transcripts/retry.wav.error.json")
    job = submitted(ports, key)  # a good re-upload of the same key
    provider.finish(job.provider_task_id, transcript())
    assert callback(ports, provider).outcome is CompletionOutcome.DONE
    assert ports.storage.head(BUCKET, "transcripts/retry.wav.error.json") is None


def test_two_pushes_of_one_task_write_the_outputs_once(ports: FakePorts, provider: FakeProvider) -> None:
    provider.max_files_per_task = 10
    provider.accepts_callback_url = False
    job = submitted(ports, "incoming/pushed.wav")
    provider.finish(job.provider_task_id, transcript())
    # The first push is writing (it holds the finishing lease) when the second arrives.
    held = ports.jobs.get(job.id).begin_finishing(
        ports.clock(), until=ports.clock() + timedelta(minutes=1), owner="the-first-push"
    )
    assert ports.jobs.save(held)
    (busy,) = complete_task("sis", known(job.provider_task_id), ports)
    assert busy.outcome is CompletionOutcome.BUSY and ports.storage.keys("transcripts/") == []


def test_a_push_for_a_task_that_is_not_ours_is_ignored_and_one_not_bound_yet_is_deferred(
    ports: FakePorts, provider: FakeProvider
) -> None:
    from bucketscribe.pipeline.complete import RECORD_WAITS_S, UnknownTask

    pauses: list[float] = []
    assert complete_task("sis", "someone-elses-task", ports, sleep=pauses.append) == []
    assert pauses == []  # the provider does not know it: nothing to wait for
    provider.lose_answer = LOST
    job = submitted(ports, "incoming/lost.wav")
    provider.lose_answer = None
    (task_id,) = provider.tasks_for(job.id)
    # The answer was lost, so no submitter will record the task: the push waits for the record
    # as long as a submitter might still be writing it, then asks to be delivered again.
    with pytest.raises(UnknownTask):
        complete_task("sis", task_id, ports, sleep=pauses.append)
    assert pauses == list(RECORD_WAITS_S)


def test_a_push_that_comes_before_its_tasks_record_finishes_the_job_once_the_record_is_written(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """The provider answered and finished, and pushed, before the submitter wrote its record of
    the task: the push waits for the record and finishes the job itself."""
    provider.lose_answer = LOST  # the task is created; the submitter records nothing of it
    job = submitted(ports, "incoming/early.wav")
    provider.lose_answer = None
    (task_id,) = provider.tasks_for(job.id)
    provider.finish(task_id, transcript("pushed early"))
    pauses: list[float] = []

    def submitter_writes_its_record_meanwhile(pause: float) -> None:
        pauses.append(pause)
        if len(pauses) == 3:
            recorded = ports.jobs.get(job.id)
            assert recorded is not None and recorded.current_attempt is not None
            ports.jobs.bind_task("sis", task_id, {job.id: recorded.current_attempt.provider_file or ""})

    (completion,) = complete_task("sis", task_id, ports, sleep=submitter_writes_its_record_meanwhile)
    assert completion.outcome is CompletionOutcome.DONE and len(pauses) == 3
    assert b"pushed early" in ports.storage.get(BUCKET, "transcripts/early.wav.txt")
    assert known(ports.jobs.get(job.id)).state is JobState.DONE


def test_a_push_for_an_old_task_with_no_record_does_not_wait(
    ports: FakePorts, provider: FakeProvider
) -> None:
    """No submitter is still writing the record of a task made longer ago than its claim lease
    (and the clocks' skew): its push is deferred at once, for the reconciler."""
    from bucketscribe.pipeline.complete import UnknownTask

    provider.lose_answer = LOST
    job = submitted(ports, "incoming/old.wav")
    provider.lose_answer = None
    (task_id,) = provider.tasks_for(job.id)
    ports.clock.now += ports.limits.claim_lease + ports.limits.clock_skew + timedelta(seconds=1)
    pauses: list[float] = []
    with pytest.raises(UnknownTask):
        complete_task("sis", task_id, ports, sleep=pauses.append)
    assert pauses == []


def test_a_callback_racing_the_workers_own_record_of_the_task_still_finishes_the_job(
    ports: FakePorts, provider: FakeProvider
) -> None:
    from bucketscribe.pipeline import complete

    job = submitted(ports, "incoming/fast.wav")
    task_id = job.provider_task_id
    provider.finish(task_id, transcript("fast provider"))
    # The callback arrived while the attempt was still unrecorded; the worker records the task
    # between the callback's read of the job and its own write.
    unrecorded = job.model_copy(
        update={
            "state": JobState.SUBMITTING,
            "version": job.version - 1,
            "attempts": [
                job.attempts[0].model_copy(update={"state": AttemptState.IN_FLIGHT, "task_id": None})
            ],
        }
    )
    attempt = unrecorded.attempts[0]
    completion = complete._bind_claimed_task(unrecorded, attempt, known(task_id), ports)
    assert completion.outcome is CompletionOutcome.DONE


def test_a_finisher_that_died_part_way_is_taken_over_without_writing_an_output_twice(
    ports: FakePorts, provider: FakeProvider
) -> None:
    job = submitted(ports, "incoming/half.wav")
    provider.finish(job.provider_task_id, transcript("written once"))
    real_put = ports.storage.put
    written: list[str] = []

    def dying_put(bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        if len(written) == 2:
            raise SystemExit("the instance died")  # not an Exception: nothing catches it
        written.append(key)
        real_put(bucket, key, body, content_type=content_type)

    ports.storage.put = dying_put
    with pytest.raises(SystemExit):
        callback(ports, provider)
    ports.storage.put = real_put
    assert callback(ports, provider).outcome is CompletionOutcome.BUSY  # its lease still holds
    ports.clock.now += ports.limits.finish_lease + timedelta(seconds=1)
    assert callback(ports, provider).outcome is CompletionOutcome.DONE
    puts = [key for _, key in ports.storage.puts]
    assert len(puts) == len(set(puts)) == len(ports.jobs.get(job.id).outputs)


def test_a_finished_job_records_how_much_of_its_recording_the_text_covers(
    ports: FakePorts, provider: FakeProvider
) -> None:
    from bucketscribe.pipeline.status import job_status

    job = submitted(ports, "incoming/hold.wav")
    long_silence = Transcript(
        provider="sis",
        duration_ms=60_000,
        segments=[
            Segment(start_ms=0, end_ms=5_000, text="please hold"),
            Segment(start_ms=50_000, end_ms=55_000, text="thank you for waiting"),
        ],
    )
    provider.finish(job.provider_task_id, long_silence)
    assert callback(ports, provider).outcome is CompletionOutcome.DONE
    done = ports.jobs.get(job.id)
    (warning,) = done.warnings
    # The gap, less the reach of the words at its edges (0.3 s each side).
    assert warning.code == "LONG_GAP_WITHOUT_TEXT" and (warning.start_ms, warning.end_ms) == (5_300, 49_700)
    written = Transcript.model_validate_json(ports.storage.get(BUCKET, "transcripts/hold.wav.json"))
    assert written.warnings == done.warnings and written.coverage == done.coverage
    assert job_status(job.id, ports.jobs).warnings == done.warnings


def answered_but_not_bound(ports: FakePorts, service: FakeProvider, key: str) -> list[Completion]:
    """Submit ``key`` with a provider that finishes the task and calls back the moment its answer
    is recorded, before the submitting worker binds the job (a fast provider)."""
    real_record = ports.jobs.bind_task
    completions: list[Completion] = []

    def record_then_call_back(
        provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        recorded = real_record(provider, task_id, files, exclusive=exclusive)
        # 9 s of audio said for a 1 s upload: the provider's own record could not prove the task
        # is this job's, so only our record of its answer binds it.
        said = transcript("said before the job was bound").model_copy(update={"duration_ms": 9_000})
        service.finish(task_id, said)
        if service.can_search_tasks:  # a provider that pushes names the task only
            completions.extend(complete_task(service.name, task_id, ports))
        else:  # one that calls back names it in the body of the attempt's URL
            completions.append(callback(ports, service, body_task_id=task_id))
        return recorded

    ports.jobs.bind_task = record_then_call_back
    ports.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    ports.jobs.bind_task = real_record
    assert result.outcome is UploadOutcome.SUBMITTED
    return completions


@pytest.mark.parametrize("pushes", [False, True], ids=["callback", "push"])
def test_a_completion_before_the_worker_binds_the_job_finishes_it_from_our_record(
    ports: FakePorts, provider: FakeProvider, pushes: bool
) -> None:
    """No completion is dropped for arriving early: the task record the worker wrote before
    binding is our own proof, so the job is bound and finished at once (none left to the
    reconciler), and the worker's own bind, arriving late, changes nothing."""
    provider.can_search_tasks = pushes
    (completion,) = answered_but_not_bound(ports, provider, "incoming/early.wav")
    assert completion.outcome is CompletionOutcome.DONE
    job = ports.jobs.get(completion.job_id)
    assert job.state is JobState.DONE and job.attempts[0].bound_by == "record"
    assert b"said before the job was bound" in ports.storage.get(BUCKET, "transcripts/early.wav.txt")
    ports.clock.now += ports.limits.first_check_after
    assert reconcile(ports).finished == 0 and len(provider.fetches) == 1

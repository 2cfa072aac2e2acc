"""Issue 17, the hot path, held through the real wire: the deployed handlers (``clouds/aws/submit``,
``clouds/aws/callback``) on the local stack (moto server, the SIS and DashScope emulators with the
instant engine, the stack's HTTP endpoint in front of the callback handler).

AWS calls are counted with botocore's ``before-call`` hook on boto3's default session
(``bucketscribe_local.aws_calls``), attached before the stack builds the functions' clients. While
a test counts, nothing else runs: the bucket notifies nobody (each test hands the submit handler
its own uploads, in the SQS event shape, with the size and ETag S3 puts in it), the reconciler
never runs (so a job only it would finish stays unfinished), and the emulators deliver callbacks
and pushes only where a test asks them to.

Nothing here measures speed: the figures are ``bench/hot_path.py``'s.
"""

from __future__ import annotations

import json
import threading
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest
from bucketscribe_local.aws_calls import AwsCall, AwsCallLog, by_name
from bucketscribe_local.aws_resources import LocalAwsNames
from bucketscribe_local.commands import up_details
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.handler_events import dashscope_push, proxy_event, sis_callback, sqs_batch
from bucketscribe_local.lambda_bridge import LocalLambdaContext
from bucketscribe_local.stack import LocalStack, LocalStackOptions

from bucketscribe.clouds.aws import callback, submit
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.upload import ObjectRef
from tests.audio import tone_wav
from tests.fakes import known
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]

Provider = Literal["sis", "dashscope"]
PROFILES = [
    {"name": "default", "prefix": ""},
    {"name": "dashscope", "prefix": "ds/", "provider": "dashscope"},
]
PREFIXES: dict[Provider, str] = {"sis": "", "dashscope": "ds/"}
# The deployed functions' timeouts (serverless.yml): what "within the function's time" means.
SUBMIT_TIMEOUT_S = 300
CALLBACK_TIMEOUT_S = 28
# Generous deadlines for the emulators' work and deliveries; the waits end as soon as it is done.
DELIVERIES_S = 30.0
# How long a submit worker held after the provider's answer waits for the completion's delivery to
# end. Long enough for a loaded machine (a hold cut short lets the worker write first, and the race
# is not tried); a design in which the completion waits for the submitter's binding waits on this
# very worker, and then the test takes this long (it still holds, only slower).
HOLD_S = 15.0


# ----- the stack and the handlers ------------------------------------------------------------------


@pytest.fixture(scope="module")
def call_log() -> Iterator[AwsCallLog]:
    with AwsCallLog() as log:  # before the stack builds the functions' clients
        yield log


@pytest.fixture(scope="module")
def stack(call_log: AwsCallLog, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = LocalStackOptions(
        instant=True,
        profiles_json=json.dumps(PROFILES),
        # Nothing reaches the queue: the tests invoke the submit handler themselves.
        names=LocalAwsNames(notification_prefix="not-notified/"),
        reconcile_interval_s=3600,  # never within a test
        log_file=tmp_path_factory.mktemp("hot-path") / "functions.log",
    )
    with LocalStack(options) as running:
        _quiet(running)
        warm_up(running)
        yield running


def _quiet(stack: LocalStack) -> None:
    """The emulators finish their jobs and deliver nothing (the tests deliver, or ask for it)."""
    stack.set_faults(FaultPlan(drop_callback_rate=1.0))
    stack.dashscope.backend.set_push_target(None)


def _delivering(stack: LocalStack) -> None:
    """Callbacks and pushes go out as the services send them, to the stack's HTTP endpoint."""
    stack.set_faults(FaultPlan())
    stack.dashscope.backend.set_push_target(f"{stack.callback_url}/callbacks/dashscope")


@pytest.fixture(autouse=True)
def quiet_by_default(stack: LocalStack) -> Iterator[None]:
    _quiet(stack)
    yield
    _quiet(stack)


def upload(stack: LocalStack, provider: Provider, *, seconds: float = 1.0) -> ObjectRef:
    (ref,) = upload_many(stack, provider, 1, seconds=seconds)
    return ref


def upload_many(
    stack: LocalStack, provider: Provider, count: int, *, seconds: float = 1.0
) -> list[ObjectRef]:
    """``count`` WAVs under the provider's prefix, through one S3 client (making one per upload, as
    ``stack.upload`` does, would cost more than the uploads)."""
    s3, body = stack.client("s3"), tone_wav(seconds)
    refs = []
    for _ in range(count):
        key = f"incoming/{PREFIXES[provider]}hot-{uuid.uuid4().hex[:10]}.wav"
        etag = s3.put_object(Bucket=stack.bucket, Key=key, Body=body, ContentType="audio/wav")["ETag"]
        refs.append(ObjectRef(bucket=stack.bucket, key=key, size=len(body), etag=etag.strip('"')))
    return refs


def run_submit(refs: list[ObjectRef]) -> dict[str, Any]:
    """The submit function's invocation for an SQS batch of these uploads' notifications."""
    return submit.handler(
        sqs_batch(refs), LocalLambdaContext("bucketscribe-submit", timeout_s=SUBMIT_TIMEOUT_S)
    )


def run_callback(method: str, url: str, body: str | None, headers: dict[str, str]) -> dict[str, Any]:
    """The callback function's invocation for this request, as API Gateway hands it over."""
    event = proxy_event(method, url, body=body, headers=headers)
    return callback.handler(event, LocalLambdaContext("bucketscribe-callback", timeout_s=CALLBACK_TIMEOUT_S))


def submitted(stack: LocalStack, ref: ObjectRef) -> Job:
    job = known(stack.job(ref.job_id()), f"the job of {ref.key}")
    assert job.state is JobState.SUBMITTED, (job.state, job.error)
    return job


def finished_at_provider(stack: LocalStack, job: Job) -> str:
    """The job's task id, once the emulator has finished the task."""
    task_id = known(job.provider_task_id, "the job's task id")
    if job.provider == "sis":
        stack.sis.backend.wait_for_job(task_id, DELIVERIES_S)
    else:
        stack.dashscope.backend.wait_for_task(task_id, DELIVERIES_S)
    return task_id


def completion_request(stack: LocalStack, job: Job) -> tuple[str, str, dict[str, str]]:
    """What the provider sends when the job's task is done: SIS's callback, DashScope's push."""
    task_id = finished_at_provider(stack, job)
    return sis_callback(stack, task_id) if job.provider == "sis" else dashscope_push(stack, task_id)


def warm_up(stack: LocalStack) -> None:
    """One upload per provider through both handlers: what a cold start does once (settings, the
    upload queue's check, the SDKs and their clients) is done before anything is counted."""
    for provider in PREFIXES:
        ref = upload(stack, provider)
        assert run_submit([ref]) == {"batchItemFailures": []}
        url, body, headers = completion_request(stack, submitted(stack, ref))
        assert run_callback("POST", url, body, headers)["statusCode"] == 200
        assert known(stack.job(ref.job_id())).state is JobState.DONE


def described(calls: list[AwsCall]) -> str:
    return ", ".join(f"{call.name}({call.item_id or call.object_key or ''})" for call in calls)


# ----- what the counts rest on ---------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["sis", "dashscope"])
def test_the_call_log_sees_every_client_the_functions_use(
    stack: LocalStack, call_log: AwsCallLog, provider: Provider
) -> None:
    """The tests below count what the log sees; it must see the functions' own clients (else a
    count of zero would pass them)."""
    ref = upload(stack, provider)
    with call_log.record() as submit_calls:
        run_submit([ref])
    url, body, headers = completion_request(stack, submitted(stack, ref))
    with call_log.record() as callback_calls:
        run_callback("POST", url, body, headers)
    assert known(stack.job(ref.job_id())).state is JobState.DONE
    # The job is created and bound in the job store (DynamoDB), the transcript put in the bucket.
    assert any(call.service == "dynamodb" and call.item_id == ref.job_id() for call in submit_calls)
    written = {call.object_key for call in callback_calls if call.name == "s3.PutObject"}
    assert stack.layout.output_key(ref.key, "txt") in written, described(callback_calls)


# ----- submit: as few calls per file as the work needs ---------------------------------------------


@pytest.mark.parametrize("provider", ["sis", "dashscope"])
def test_submit_makes_four_aws_calls_per_wav_upload_each_one_the_promise_needs(
    stack: LocalStack, call_log: AwsCallLog, provider: Provider
) -> None:
    """The common path: a WAV upload whose notification carries its size and ETag, one per
    invocation (so a DashScope task of one file). Four calls, each one needed: its first bytes read
    once (is it media at all, how long, what rate — before a provider job is paid for); the job
    created with its first attempt's intent in one conditional write (before the provider is
    called); the provider's answer recorded as a task record, created in one conditional write
    (what binds an early completion, and what refuses another upload's task at a callback whose
    answer was lost); and the job bound to its task. (The issue's target was two: the task record
    and the header read stay, for the reasons above.)"""
    refs = [upload(stack, provider) for _ in range(3)]
    per_file: list[list[AwsCall]] = []
    for ref in refs:
        with call_log.record() as calls:
            assert run_submit([ref]) == {"batchItemFailures": []}
        per_file.append(calls)
        submitted(stack, ref)
    for calls in per_file:
        assert by_name(calls) == {"s3.GetObject": 1, "dynamodb.PutItem": 3}, described(calls)
        reads = [call for call in calls if call.name == "s3.GetObject"]
        assert len(reads) == 1 and reads[0].object_key is not None


def test_a_batch_of_uploads_to_one_provider_task_shares_its_task_record(
    stack: LocalStack, call_log: AwsCallLog
) -> None:
    """DashScope takes up to 100 files per task: the task record is one write for the batch, so a
    file costs three calls and a share of one."""
    refs = [upload(stack, "dashscope") for _ in range(8)]
    with call_log.record() as calls:
        assert run_submit(refs) == {"batchItemFailures": []}
    tasks = {known(submitted(stack, ref).provider_task_id) for ref in refs}
    assert len(tasks) == 1
    record_writes = [call for call in calls if call.item_id and next(iter(tasks)) in call.item_id]
    assert len(record_writes) == 1, described(calls)
    assert len(calls) == 3 * len(refs) + 1, described(calls)


@pytest.mark.parametrize("provider", ["sis", "dashscope"])
def test_submit_trusts_the_size_and_etag_the_notification_carries(
    stack: LocalStack, call_log: AwsCallLog, provider: Provider
) -> None:
    ref = upload(stack, provider)
    assert ref.size and ref.etag  # what the notification will carry
    with call_log.record() as calls:
        run_submit([ref])
    submitted(stack, ref)
    heads = [call for call in calls if call.name == "s3.HeadObject"]
    assert heads == [], described(calls)


@pytest.mark.parametrize("provider", ["sis", "dashscope"])
def test_a_new_tasks_record_is_created_in_one_write_never_read_first(
    stack: LocalStack, call_log: AwsCallLog, provider: Provider
) -> None:
    """The record of a task its submitter just got is new: one conditional create, no read. It stays
    for one-file tasks too: a push names only the task, and for a callback whose attempt lost its
    answer it is what says the task is not another upload's."""
    ref = upload(stack, provider)
    with call_log.record() as calls:
        run_submit([ref])
    job = submitted(stack, ref)
    task_id = known(job.provider_task_id)
    task_record = [call for call in calls if call.item_id and task_id in call.item_id]
    assert by_name(task_record) == {"dynamodb.PutItem": 1}, described(calls)


# ----- callback: no storage read that the job record can answer --------------------------------------


@pytest.mark.parametrize("provider", ["sis", "dashscope"])
def test_the_callback_of_a_job_that_never_failed_reads_no_error_report_or_output(
    stack: LocalStack, call_log: AwsCallLog, provider: Provider
) -> None:
    """The job record says the job never failed and that its outputs were never written: no HEAD
    or GET of ``<key>.error.json`` or of any output. (The upload itself may be looked at: whether a
    later upload replaced it is the bucket's to say, not the record's.)"""
    ref = upload(stack, provider)
    run_submit([ref])
    url, body, headers = completion_request(stack, submitted(stack, ref))
    with call_log.record() as calls:
        reply = run_callback("POST", url, body, headers)
    assert reply["statusCode"] == 200, reply
    job = known(stack.job(ref.job_id()))
    assert job.state is JobState.DONE and job.error is None and job.finishings == 1
    reads = [call for call in calls if call.name in ("s3.HeadObject", "s3.GetObject")]
    assert [call for call in reads if call.object_key != ref.key] == [], described(calls)


# ----- the race: a completion that comes before submit has written the answer ------------------------


HoldPoint = Literal["provider answered", "before the bind"]


def hold_submitter_at(
    stack: LocalStack,
    point: HoldPoint,
    wait_for_delivery: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    """Pause the submit worker at ``point`` until the completion's delivery has ended; returns the
    list that records each pause (a hook that never fired would make the test prove nothing).

    "provider answered": right after ``provider.submit`` returned, before anything of its answer
    is written (the local stack's provider wrapper calls ``PipelineFaults.maybe_crash`` there).
    "before the bind": at the job-store write that records the task on the job (bound by the
    answer), after whatever submit writes before it (today: the task record).
    """
    held: list[str] = []

    def hold(where: str) -> None:
        held.append(where)
        wait_for_delivery()

    if point == "provider answered":
        monkeypatch.setattr(stack.pipeline_faults, "maybe_crash", lambda: hold(point))
        return held
    from bucketscribe.wiring import environment_ports

    jobs = environment_ports().jobs
    save = jobs.save

    def save_after_delivery(job: Job) -> bool:
        latest = job.attempts[-1] if job.attempts else None
        if not held and latest is not None and latest.task_id and latest.bound_by == "answer":
            hold(point)
        return bool(save(job))

    monkeypatch.setattr(jobs, "save", save_after_delivery)
    return held


def deliveries_ended(stack: LocalStack, provider: Provider, tasks_before: int) -> Callable[[], None]:
    """Wait (at most ``HOLD_S``) until the provider has finished the task just submitted and its
    callback or push has ended: answered, or given up after the emulator's retries."""

    def wait() -> None:
        if provider == "sis":
            stack.sis.backend.wait_idle(HOLD_S)
            return
        backend = stack.dashscope.backend
        backend.wait_for_counters(lambda counters: counters.tasks_finished > tasks_before, HOLD_S)
        backend.wait_pushes_idle(HOLD_S)

    return wait


@pytest.mark.parametrize(
    ("provider", "point"),
    [
        ("sis", "provider answered"),
        ("sis", "before the bind"),
        ("dashscope", "provider answered"),
        ("dashscope", "before the bind"),
    ],
)
def test_a_completion_that_comes_before_submit_bound_the_job_finishes_it_at_once(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, provider: Provider, point: HoldPoint
) -> None:
    """The provider answers, calls back or pushes at once, and only then does the submit worker
    go on: the completion, delivered through the stack's HTTP endpoint to the callback handler,
    must finish the job itself. Nothing is left to the reconciler (which never runs here)."""
    _delivering(stack)
    ref = upload(stack, provider)
    tasks_before = stack.dashscope.backend.counters.tasks_finished
    held = hold_submitter_at(stack, point, deliveries_ended(stack, provider, tasks_before), monkeypatch)
    assert run_submit([ref]) == {"batchItemFailures": []}
    assert held == [point], "the submit worker was never held where the test means to hold it"
    # Whatever the submitter's late write set off has been delivered too.
    if provider == "sis":
        assert stack.sis.backend.wait_idle(DELIVERIES_S)
    else:
        assert stack.dashscope.backend.wait_pushes_idle(DELIVERIES_S)
    job = known(stack.job(ref.job_id()))
    assert job.state is JobState.DONE, f"{job.state.value}: left to the reconciler"
    assert stack.read_output(stack.layout.output_key(ref.key, "txt"))


# ----- a SIS result of any length completes through its callback --------------------------------------

FIVE_MB = 5 * 1024 * 1024


def five_hour_result(body: str) -> str:
    """The callback body with its result grown to what 5 h of speech gives (~5 MB: some 4 000
    segments with their words): SIS posts the whole result to the callback, though the handler
    needs only the job named in the URL."""
    result = json.loads(body)
    base = len(body.encode("utf-8"))

    def segment(index: int) -> dict[str, Any]:
        start_ms = index * 4000
        words = [
            {"start_time": start_ms + 400 * i, "end_time": start_ms + 400 * (i + 1), "word": "word"}
            for i in range(10)
        ]
        return {
            "start_time": start_ms,
            "end_time": start_ms + 4000,
            "result": {"text": " ".join(["word"] * len(words)), "word_info": words},
        }

    one = len(json.dumps(segment(0)).encode("utf-8")) + 2  # ", " between segments
    count = (FIVE_MB - base) // one + 2
    result["segments"] = [*(result.get("segments") or []), *(segment(i) for i in range(count))]
    return json.dumps(result, ensure_ascii=False)


def post(url: str, body: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=CALLBACK_TIMEOUT_S) as response:
        return int(response.status)


@pytest.mark.parametrize("entry", ["API Gateway proxy event", "the stack's HTTP endpoint"])
def test_a_5_mb_sis_callback_completes_its_job(stack: LocalStack, entry: str) -> None:
    ref = upload(stack, "sis")
    run_submit([ref])
    url, body, headers = completion_request(stack, submitted(stack, ref))
    big = five_hour_result(body)
    assert len(big.encode("utf-8")) >= FIVE_MB
    if entry == "API Gateway proxy event":
        reply = run_callback("POST", url, big, headers)
        status = int(reply["statusCode"])
    else:
        status = post(url, big, headers)
    assert status == 200
    assert known(stack.job(ref.job_id())).state is JobState.DONE


def test_a_5_mb_sis_callback_that_comes_before_submit_recorded_the_answer_completes_its_job(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one case where the body is read: the attempt has no task recorded yet, so the callback
    names its task (the proof path, or whatever binds it now). Its 5 MB must not stop it."""
    ref = upload(stack, "sis")
    known_before = set(stack.sis.backend.job_ids())
    statuses: list[int] = []

    def call_back_now() -> None:
        (sis_job,) = set(stack.sis.backend.job_ids()) - known_before
        stack.sis.backend.wait_for_job(sis_job, DELIVERIES_S)
        url, body, headers = sis_callback(stack, sis_job)
        statuses.append(post(url, five_hour_result(body), headers))

    held = hold_submitter_at(stack, "provider answered", call_back_now, monkeypatch)
    assert run_submit([ref]) == {"batchItemFailures": []}
    assert held == ["provider answered"] and statuses == [200]
    assert known(stack.job(ref.job_id())).state is JobState.DONE


# ----- a 100-file push: within the function's time, one download per result ---------------------------

PUSHED_FILES = 100
# Each result file takes this long to download: 100 of them one after another (25 s) do not fit in
# the callback function's 28 s with anything else; ten at a time take 2.5 s.
SLOW_DOWNLOAD_S = 0.25


def test_a_100_file_push_with_slow_downloads_finishes_every_job_downloading_each_result_once(
    stack: LocalStack,
) -> None:
    refs = upload_many(stack, "dashscope", PUSHED_FILES, seconds=0.2)
    assert run_submit(refs) == {"batchItemFailures": []}  # one batch: one task of 100 files
    jobs = [submitted(stack, ref) for ref in refs]
    assert len({job.provider_task_id for job in jobs}) == 1
    url, body, headers = completion_request(stack, jobs[0])
    backend = stack.dashscope.backend
    downloads_before = backend.counters.result_downloads
    stack.set_faults(FaultPlan(drop_callback_rate=1.0, result_delay_s=SLOW_DOWNLOAD_S))

    # The push through the stack's HTTP endpoint; EventBridge delivers it again when the first
    # delivery is slow to answer (its targets time out within seconds): here, once the first has
    # begun downloading.
    statuses: dict[str, int] = {}

    def deliver(name: str) -> None:
        statuses[name] = post(url, body, headers)

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    wait_until(
        lambda: backend.counters.result_downloads > downloads_before or not first.is_alive(),
        timeout_s=DELIVERIES_S,
        what="the first delivery to download a result",
    )
    again = threading.Thread(target=deliver, args=("again",))
    again.start()
    for delivery in (first, again):
        delivery.join(2 * CALLBACK_TIMEOUT_S)
        assert not delivery.is_alive(), "a delivery never answered"
    assert statuses["first"] == 200 and statuses["again"] < 500, statuses

    states = [known(stack.job(ref.job_id())).state for ref in refs]
    unfinished = sum(state is not JobState.DONE for state in states)
    downloads = backend.counters.result_downloads - downloads_before
    assert (unfinished, downloads) == (0, PUSHED_FILES), (
        f"{unfinished} jobs not done when the push was answered; {downloads} result downloads"
    )


# ----- up --json: the emulators' credentials drive them from any SDK client ------------------------


def test_the_credentials_up_prints_drive_both_emulators_with_their_own_sdks(stack: LocalStack) -> None:
    from dashscope.audio.asr import Transcription
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdksis.v1 import (
        CollectTranscriberJobRequest,
        PostTranscriberJobs,
        PushTranscriberJobsRequest,
        SisClient,
        TranscriberConfig,
    )

    details = up_details(stack)
    ref = upload(stack, "sis")
    media_url = stack.client("s3").generate_presigned_url(
        "get_object", Params={"Bucket": ref.bucket, "Key": ref.key}, ExpiresIn=600
    )

    sis = (
        SisClient.new_builder()
        .with_credentials(BasicCredentials(details["sis_ak"], details["sis_sk"], details["sis_project_id"]))
        .with_endpoint(details["sis_endpoint"])
        .build()
    )
    config = TranscriberConfig(audio_format="auto", _property="chinese_16k_media")
    request = PushTranscriberJobsRequest(body=PostTranscriberJobs(config=config, data_url=media_url))
    sis_job = sis.push_transcriber_jobs(request).job_id
    stack.sis.backend.wait_for_job(sis_job, DELIVERIES_S)
    collected = sis.collect_transcriber_job(CollectTranscriberJobRequest(job_id=sis_job))
    assert collected.status == "FINISHED" and collected.segments

    answer = Transcription.async_call(
        model="paraformer-v2",
        file_urls=[media_url],
        api_key=details["dashscope_api_key"],
        base_address=details["dashscope_endpoint"],
    )
    assert answer.status_code == 200, answer
    task_id = answer.output.task_id
    stack.dashscope.backend.wait_for_task(task_id, DELIVERIES_S)
    task = Transcription.fetch(
        task_id, api_key=details["dashscope_api_key"], base_address=details["dashscope_endpoint"]
    )
    assert task.output.task_status == "SUCCEEDED"

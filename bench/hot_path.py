"""Issue 17's hot path, measured: every figure beside its baseline from the same run, and the target.

1. The warm submit handler per file (SIS, DashScope): ms and AWS calls, beside the bare calls a
   submission needs (one conditional PutItem, a presigned URL, the provider SDK's submit), run
   A/B interleaved file by file against the same emulators and moto server.
2. The warm callback handler per file (SIS's callback, DashScope's push): ms and AWS calls, beside
   the bare calls (the provider SDK's fetch, the result download for DashScope, five puts).
   1 and 2 run twice: on the local stack as it is (no network: each request costs moto's CPU),
   and with a function's round trips on AWS added to every request (``bench/scale.py``'s stated
   latencies, held by moto per kind of request and by the emulators' APIs: ``aws_model``), where
   what runs side by side overlaps as it does in the cloud.
3. A burst of 100 uploads through the local stack as ``bucketscribe up --instant`` runs it, to the
   last transcript: files/s beside the provider's own loop on the same emulators (DashScope's
   sample: submit one file, wait, download, next; SIS polled every 0.1 s), DashScope tasks per
   file, and files left to the reconciler (jobs the reconcile function finished: a completion
   never came, or was ignored).
4. A 100-file DashScope push handled by the callback handler: seconds, result downloads per
   result (EventBridge delivers the push again when its target has not answered in 5 s).

AWS calls are counted with botocore's ``before-call`` hook on boto3's default session
(``bucketscribe_local.aws_calls``), attached before the stack builds the functions' clients; every
request that reaches moto server is logged too, so S3 reads that do not go through botocore
(presigned URLs: the providers fetching the upload, or our own code) show apart.

Run: ``.venv/bin/python bench/hot_path.py`` (quick: 30 files per warm figure and per provider loop,
12 at AWS round trips, a few minutes on a loaded 2-core machine) or ``--full`` (100 each, 30).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from results_file import publish  # bench/ is on sys.path when run as a script

T = TypeVar("T")
U = TypeVar("U")

# The targets.
SUBMIT_RATIO_TARGET = 1.5
SUBMIT_CALLS_TARGET = 2
CALLBACK_RATIO_TARGET = 1.5
DASHSCOPE_LOOP_TARGET = 20.0
SIS_POLL_LOOP_TARGET = 1.0
TASKS_PER_FILE_TARGET = 0.02
PUSH_SECONDS_TARGET = 5.0
DOWNLOADS_PER_RESULT_TARGET = 1.0
LEFT_TO_RECONCILER_TARGET = 0

BURST_FILES = 100
PUSH_FILES = 100
# A period per A/B pair in the warm figures: the DashScope adapter spaces its calls at 18/s and the
# emulator allows 20 task queries a second per key, so pairs closer than this would measure waits.
PAIR_PERIOD_S = 0.12
# EventBridge gives up on an API destination that has not answered within 5 s, and delivers again.
EVENTBRIDGE_TIMEOUT_S = 5.0
SIS_POLL_S = 0.1
CALLBACK_TIMEOUT_S = 28  # the deployed callback function's timeout (serverless.yml)
SUBMIT_TIMEOUT_S = 300
BURST_TIMEOUT_S = 400.0  # room for the reconciler's first look (60 s) and its schedule (30 s)
PROFILE_PREFIX = {"sis": "", "dashscope": "ds/"}


# ----- requests as moto server sees them -----------------------------------------------------------


@dataclass(frozen=True)
class MotoRequest:
    method: str
    path: str
    signed_by_botocore: bool  # an Authorization header (SigV4): a boto3 client's call
    presigned: bool  # a presigned URL's signature in the query string
    user_agent: str
    target: str = ""  # a JSON protocol's operation, e.g. "AmazonSQS.ReceiveMessage"

    @property
    def by_queue_poller(self) -> bool:
        """The local stack's stand-in for Lambda's SQS pollers, long-polling all along: not the
        handler's (in the cloud, Lambda's own)."""
        return self.target.startswith("AmazonSQS.")

    @property
    def by_provider(self) -> bool:
        """The SIS or DashScope emulator fetching the upload it was sent."""
        return self.user_agent.startswith(("sis-emulator", "dashscope-emulator"))


class MotoRequestLog:
    """The requests moto server served, from the log its process writes (``LocalStackOptions.
    moto_request_log``: a JSON line per request, written before it is answered): those of a
    ``record()`` block are the lines it added."""

    def __init__(self, path: Path) -> None:
        self._path = path

    @classmethod
    def install(cls, stack: Any) -> MotoRequestLog | None:
        """The stack's request log; None when it keeps none (the figures say n/a then)."""
        path = stack.options.moto_request_log
        return cls(path) if path is not None else None

    @contextmanager
    def record(self) -> Iterator[list[MotoRequest]]:
        """The requests whose lines the block added. A line being written as the block began or
        ended is another request's (one in flight then: the stack's queue pollers long-poll
        all along), and is left out."""
        requests: list[MotoRequest] = []
        start = self._path.stat().st_size if self._path.exists() else 0
        try:
            yield requests
        finally:
            with self._path.open("rb") as log:
                log.seek(max(start - 1, 0))
                added = log.read()
            if start > 0:
                # The byte before the block's start: a newline unless a line was being written.
                added = added[1:] if added[:1] == b"\n" else added.partition(b"\n")[2]
            lines = added.decode("utf-8").split("\n")[:-1]  # the last: empty, or being written
            requests.extend(MotoRequest(**json.loads(line)) for line in lines if line.strip())


@contextmanager
def maybe_record(log: MotoRequestLog | None) -> Iterator[list[MotoRequest] | None]:
    if log is None:
        yield None
        return
    with log.record() as requests:
        yield requests


# ----- small helpers ---------------------------------------------------------------------------------


def one_second_wav() -> bytes:
    import io
    import wave

    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16_000)
        wav.writeframes(
            b"".join(int((i % 100 - 50) * 20).to_bytes(2, "little", signed=True) for i in range(16_000))
        )
    return buffer.getvalue()


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def verdict(ok: bool) -> str:
    return "within" if ok else "OVER"


def median_ms(values: list[float]) -> float:
    return ms(statistics.median(values)) if values else float("nan")


def mean_ms(values: list[float]) -> float:
    return ms(statistics.fmean(values)) if values else float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return round(numerator / denominator, 2) if denominator else float("nan")


def pace(started: float, period_s: float) -> None:
    """Sleep out the rest of ``period_s`` since ``started`` (outside every timed region)."""
    left = period_s - (time.perf_counter() - started)
    if left > 0:
        time.sleep(left)


class Uploads:
    """Uploads through one S3 client (a client per upload would cost more than the upload)."""

    def __init__(self, stack: Any) -> None:
        self._stack = stack
        self._s3 = stack.client("s3")
        self.body = one_second_wav()

    def put(self, key: str) -> Any:
        from bucketscribe.domain.upload import ObjectRef

        etag = self._s3.put_object(
            Bucket=self._stack.bucket, Key=key, Body=self.body, ContentType="audio/wav"
        )
        return ObjectRef(
            bucket=self._stack.bucket, key=key, size=len(self.body), etag=etag["ETag"].strip('"')
        )

    def many(self, keys: list[str], *, threads: int = 8) -> list[Any]:
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(self.put, keys))

    def presigned(self, key: str) -> str:
        url: str = self._s3.generate_presigned_url(
            "get_object", Params={"Bucket": self._stack.bucket, "Key": key}, ExpiresIn=12 * 3600
        )
        return url


# ----- the bare calls: what a submission and a completion cannot do without -----------------------


class Bare:
    """The provider SDKs and boto3 clients a hand-written pipeline would use, built once (as a warm
    function has them), driven with the credentials ``up --json`` prints."""

    def __init__(self, stack: Any) -> None:
        import boto3
        from botocore.config import Config
        from bucketscribe_local.commands import up_details
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.http.http_config import HttpConfig
        from huaweicloudsdksis.v1 import SisClient

        details = up_details(stack)
        self.table = details["jobs_table"]
        self.bucket = details["bucket"]
        # The same client settings as the deployed adapters (clouds/aws/job_store.py, storage.py).
        self.dynamodb = boto3.client(
            "dynamodb",
            endpoint_url=stack.endpoint_url,
            config=Config(retries={"mode": "standard", "max_attempts": 3}),
        )
        self.s3 = boto3.client(
            "s3",
            endpoint_url=stack.endpoint_url,
            config=Config(
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                s3={"addressing_style": "path"},
            ),
        )
        http_config = HttpConfig.get_default_config()
        http_config.timeout = (10.0, 30.0)
        self.sis = (
            SisClient.new_builder()
            .with_credentials(
                BasicCredentials(details["sis_ak"], details["sis_sk"], details["sis_project_id"])
            )
            .with_http_config(http_config)
            .with_endpoint(details["sis_endpoint"])
            .build()
        )
        self.dashscope = {
            "api_key": details["dashscope_api_key"],
            "base_address": details["dashscope_endpoint"],
        }
        self.callback_base = details["callback_base_url"]
        self.job_doc = "{}"  # replaced by a real job record's JSON, so the write is the same size

    def create_job(self) -> None:
        item = {"id": {"S": "bare-" + uuid.uuid4().hex}, "doc": {"S": self.job_doc}}
        self.dynamodb.put_item(
            TableName=self.table, Item=item, ConditionExpression="attribute_not_exists(id)"
        )

    def presign(self, key: str) -> str:
        url: str = self.s3.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=12 * 3600
        )
        return url

    def submit_sis(self, key: str, *, callback: bool = True) -> str:
        from huaweicloudsdksis.v1 import PostTranscriberJobs, PushTranscriberJobsRequest, TranscriberConfig

        self.create_job()
        url = self.presign(key)
        # A callback URL as long as the pipeline's (job id, attempt, expiry, token).
        callback_url = (
            f"{self.callback_base}/callbacks/sis/{uuid.uuid4().hex}?attempt=1&exp=9999999999&token={'t' * 43}"
        )
        config = TranscriberConfig(
            audio_format="auto",
            _property="chinese_16k_media",
            callback_url=callback_url if callback else None,
        )
        response = self.sis.push_transcriber_jobs(
            PushTranscriberJobsRequest(body=PostTranscriberJobs(config=config, data_url=url))
        )
        return str(response.job_id)

    def submit_dashscope(self, key: str) -> str:
        from dashscope.audio.asr import Transcription

        self.create_job()
        url = self.presign(key)
        response = Transcription.async_call(model="paraformer-v2", file_urls=[url], **self.dashscope)
        if response.status_code != 200:
            raise RuntimeError(f"DashScope refused the bare submission: {response.code} {response.message}")
        return str(response.output.task_id)

    def submit(self, provider: str, key: str) -> str:
        return self.submit_sis(key) if provider == "sis" else self.submit_dashscope(key)

    def complete(self, provider: str, task: str, name: str) -> None:
        """What finishing a file takes at the least: its result fetched, five objects put."""
        self.five_puts(name, self.fetch_sis(task) if provider == "sis" else self.fetch_dashscope(task))

    def fetch_sis(self, sis_job: str) -> bytes:
        from huaweicloudsdksis.v1 import CollectTranscriberJobRequest

        response = self.sis.collect_transcriber_job(CollectTranscriberJobRequest(job_id=sis_job))
        return json.dumps(response.to_json_object()).encode("utf-8")

    def fetch_dashscope(self, task_id: str) -> bytes:
        from dashscope.audio.asr import Transcription

        task = Transcription.fetch(task_id, **self.dashscope)
        result_url = task.output["results"][0]["transcription_url"]
        with urllib.request.urlopen(result_url, timeout=8) as response:
            return bytes(response.read())

    def five_puts(self, name: str, body: bytes) -> None:
        for extension in ("raw.json", "json", "txt", "srt", "vtt"):
            self.s3.put_object(
                Bucket=self.bucket, Key=f"bare/{name}.{extension}", Body=body, ContentType="text/plain"
            )


# ----- the handlers, as AWS invokes them ---------------------------------------------------------


def submit_event(refs: list[Any]) -> dict[str, Any]:
    from bucketscribe_local.handler_events import sqs_batch

    return sqs_batch(refs)


def invoke_submit(event: dict[str, Any]) -> dict[str, Any]:
    """The submit function as Lambda's SQS poller invokes it (the event made beforehand)."""
    from bucketscribe_local.lambda_bridge import LocalLambdaContext

    from bucketscribe.clouds.aws import submit

    return submit.handler(event, LocalLambdaContext("bucketscribe-submit", timeout_s=SUBMIT_TIMEOUT_S))


def invoke_callback(event: dict[str, Any]) -> dict[str, Any]:
    """The callback function as API Gateway invokes it (the event made beforehand)."""
    from bucketscribe_local.lambda_bridge import LocalLambdaContext

    from bucketscribe.clouds.aws import callback

    return callback.handler(event, LocalLambdaContext("bucketscribe-callback", timeout_s=CALLBACK_TIMEOUT_S))


def finished_at_provider(stack: Any, provider: str, task_id: str) -> None:
    if provider == "sis":
        stack.sis.backend.wait_for_job(task_id, 30)
    else:
        stack.dashscope.backend.wait_for_task(task_id, 30)


def completion_event(stack: Any, provider: str, task_id: str) -> dict[str, Any]:
    """What the provider sends once the task is done (SIS's callback, DashScope's push), as the
    callback function's API Gateway event."""
    from bucketscribe_local.handler_events import dashscope_push, proxy_event, sis_callback

    finished_at_provider(stack, provider, task_id)
    url, body, headers = sis_callback(stack, task_id) if provider == "sis" else dashscope_push(stack, task_id)
    return proxy_event("POST", url, body=body, headers=headers)


# ----- 1 and 2: the warm handlers per file -----------------------------------------------------------


@dataclass
class Sample:
    seconds: float
    aws_calls: int
    aws_by_name: dict[str, int]
    moto: list[MotoRequest] | None


def timed(step: Callable[[], T], calls_log: Any, moto: MotoRequestLog | None) -> tuple[Sample, T]:
    from bucketscribe_local.aws_calls import by_name

    with calls_log.record() as calls, maybe_record(moto) as requests:
        started = time.perf_counter()
        outcome = step()
        seconds = time.perf_counter() - started
    return Sample(seconds, len(calls), by_name(calls), requests), outcome


def a_b(
    index: int, bare: Callable[[], T], handler: Callable[[], U], calls_log: Any, moto: MotoRequestLog | None
) -> tuple[tuple[Sample, T], tuple[Sample, U]]:
    """One pair, timed: the bare calls and the handler, in turns first (drift and warm caches fall
    on both alike)."""
    if index % 2 == 0:
        bare_run = timed(bare, calls_log, moto)
        return bare_run, timed(handler, calls_log, moto)
    handler_run = timed(handler, calls_log, moto)
    return timed(bare, calls_log, moto), handler_run


def summary(handler: list[Sample], bare: list[Sample]) -> dict[str, Any]:
    files = len(handler)
    handler_s = [s.seconds for s in handler]
    bare_s = [s.seconds for s in bare]
    by_name: Counter[str] = Counter()
    for sample in handler:
        by_name.update(sample.aws_by_name)
    result: dict[str, Any] = {
        "files": files,
        "handler_ms_median": median_ms(handler_s),
        "handler_ms_mean": mean_ms(handler_s),
        "bare_ms_median": median_ms(bare_s),
        "bare_ms_mean": mean_ms(bare_s),
        "ratio_median": ratio(statistics.median(handler_s), statistics.median(bare_s)),
        "ratio_mean": ratio(statistics.fmean(handler_s), statistics.fmean(bare_s)),
        "handler_aws_calls_per_file": round(sum(s.aws_calls for s in handler) / files, 2),
        "bare_aws_calls_per_file": round(sum(s.aws_calls for s in bare) / files, 2),
        "handler_aws_calls_by_name_per_file": {
            name: round(n / files, 2) for name, n in by_name.most_common()
        },
    }
    if all(s.moto is not None for s in handler):
        requests = [r for s in handler for r in (s.moto or []) if not r.by_queue_poller]
        result["moto_requests_per_file"] = {
            # Cross-checks the botocore count: each boto3 call is one signed request, and each
            # retry botocore makes by itself (a dropped keep-alive connection) one more.
            "signed_by_botocore": round(sum(r.signed_by_botocore for r in requests) / files, 2),
            # Requests of ours that bypass botocore (a presigned URL read with urllib or PyAV); the
            # providers' fetches of the upload (their own user agents) are not ours and left out.
            "pipeline_outside_botocore": round(
                sum(not r.signed_by_botocore and not r.by_provider for r in requests) / files, 2
            ),
        }
    return result


@dataclass(frozen=True)
class CloudModel:
    """Round trips added to every request, as a function in the cloud waits for them: moto's by
    kind of request, the providers' API answers and DashScope's result files."""

    name: str
    moto: dict[str, float]
    provider_s: float


def aws_model() -> CloudModel:
    """``bench/scale.py``'s stated latencies for a function on AWS (us-east-1, the providers across
    the Pacific); the providers' own processing time is left out, which only lowers the handlers'
    share of a call's time (the ratios here are the higher for it)."""
    from scale import LATENCIES  # bench/ is on sys.path when run as a script

    aws = LATENCIES["aws"]
    return CloudModel(
        name="aws",
        moto={
            "dynamodb.read": aws.store_read,
            "dynamodb.write": aws.store_write,
            "dynamodb.query": aws.store_query,
            "s3.head": aws.head,
            "s3.get": aws.range_get,
            "s3.put": aws.put,
            "s3.delete": aws.delete,
        },
        provider_s=aws.provider_rtt,
    )


def warm_handlers(files: int, log_dir: Path, cloud: CloudModel | None = None) -> dict[str, Any]:
    """The warm handlers A/B per provider, and (not with a cloud model) the 100-file push."""
    from bucketscribe_local.aws_calls import AwsCallLog
    from bucketscribe_local.aws_resources import LocalAwsNames
    from bucketscribe_local.faults import FaultPlan
    from bucketscribe_local.stack import LocalStack, LocalStackOptions

    profiles = [{"name": "default", "prefix": ""}, {"name": "ds", "prefix": "ds/", "provider": "dashscope"}]
    tag = cloud.name if cloud else "local"
    options = LocalStackOptions(
        instant=True,
        profiles_json=json.dumps(profiles),
        names=LocalAwsNames(notification_prefix="not-notified/"),  # the bench invokes the handlers
        reconcile_interval_s=3600,
        log_file=log_dir / f"warm-functions-{tag}.log",
        moto_request_log=log_dir / f"moto-requests-{tag}.jsonl",
        moto_latencies=cloud.moto if cloud else {},
    )
    # The emulators finish their jobs and deliver nothing: the bench delivers, timed.
    delay = cloud.provider_s if cloud else 0.0
    quiet = FaultPlan(drop_callback_rate=1.0, answer_delay_s=delay, result_delay_s=delay)
    results: dict[str, Any] = {}
    with AwsCallLog() as calls_log, LocalStack(options) as stack:
        moto = MotoRequestLog.install(stack)
        stack.set_faults(quiet)
        stack.dashscope.backend.set_push_target(None)
        uploads, bare = Uploads(stack), Bare(stack)
        warm_up(stack, uploads, bare)
        for provider in ("sis", "dashscope"):
            print(f"  warm handlers ({tag}), {provider}: {files} files A/B ...", file=sys.stderr, flush=True)
            results[provider] = warm_provider(stack, calls_log, moto, uploads, bare, provider, files)
        if cloud is None:
            print("  a 100-file DashScope push ...", file=sys.stderr, flush=True)
            results["push"] = hundred_file_push(stack, uploads)
    return results


def warm_provider(
    stack: Any,
    calls_log: Any,
    moto: MotoRequestLog | None,
    uploads: Uploads,
    bare: Bare,
    provider: str,
    files: int,
) -> dict[str, Any]:
    """Per file: the bare submission and the submit handler, A/B; then, once the provider has
    finished both, the bare completion and the callback handler, A/B."""
    refs = uploads.many([f"incoming/{PROFILE_PREFIX[provider]}warm-{i:04d}.wav" for i in range(files)])
    sources = [ref.key for ref in uploads.many([f"bare-src/{provider}-{i:04d}.wav" for i in range(files)])]
    submit_runs: list[tuple[Sample, Sample]] = []
    tasks: list[tuple[str, str]] = []  # (the handler's, the bare calls') per file
    for index, (ref, source) in enumerate(zip(refs, sources, strict=True)):
        started = time.perf_counter()
        (bare_sample, bare_task), (handler_sample, _) = a_b(
            index,
            partial(bare.submit, provider, source),
            partial(invoke_submit, submit_event([ref])),
            calls_log,
            moto,
        )
        submit_runs.append((handler_sample, bare_sample))
        job = stack.job(ref.job_id())
        if job is None or job.provider_task_id is None:
            raise RuntimeError(f"the submit handler did not submit {ref.key}: {job}")
        tasks.append((job.provider_task_id, bare_task))
        pace(started, PAIR_PERIOD_S)
    callback_runs: list[tuple[Sample, Sample]] = []
    for index, (task_id, bare_task) in enumerate(tasks):
        started = time.perf_counter()
        event = completion_event(stack, provider, task_id)
        finished_at_provider(stack, provider, bare_task)
        (bare_sample, _), (handler_sample, reply) = a_b(
            index,
            partial(bare.complete, provider, bare_task, f"{provider}-{index}"),
            partial(invoke_callback, event),
            calls_log,
            moto,
        )
        if reply["statusCode"] != 200:
            raise RuntimeError(f"the callback handler answered {reply}")
        callback_runs.append((handler_sample, bare_sample))
        pace(started, PAIR_PERIOD_S)
    states = Counter(job.state.value for ref in refs if (job := stack.job(ref.job_id())) is not None)
    return {
        "submit": summary([h for h, _ in submit_runs], [b for _, b in submit_runs]),
        "callback": summary([h for h, _ in callback_runs], [b for _, b in callback_runs]),
        "job_states_after": dict(states),
    }


def warm_up(stack: Any, uploads: Uploads, bare: Bare) -> None:
    """A cold start's one-time work (settings, the queue check, SDK imports and clients) done
    before anything is timed, in the handlers and in the bare clients alike."""
    for provider in ("sis", "dashscope"):
        ref = uploads.put(f"incoming/{PROFILE_PREFIX[provider]}warm-up.wav")
        invoke_submit(submit_event([ref]))
        job = stack.job(ref.job_id())
        if job is None or job.provider_task_id is None:
            raise RuntimeError(f"the warm-up upload was not submitted: {job}")
        bare.job_doc = stack.client("dynamodb").get_item(TableName=bare.table, Key={"id": {"S": job.id}})[
            "Item"
        ]["doc"]["S"]
        invoke_callback(completion_event(stack, provider, job.provider_task_id))
        key = uploads.put(f"bare-src/warm-up-{provider}.wav").key
        task = bare.submit(provider, key)
        finished_at_provider(stack, provider, task)
        bare.complete(provider, task, f"warm-up-{provider}")


# ----- 4: a 100-file push ------------------------------------------------------------------------------


def hundred_file_push(stack: Any, uploads: Uploads) -> dict[str, Any]:
    refs = uploads.many([f"incoming/ds/push-{i:03d}.wav" for i in range(PUSH_FILES)])
    invoke_submit(submit_event(refs))  # one invocation, one task of 100 files
    tasks = {job.provider_task_id for ref in refs if (job := stack.job(ref.job_id())) is not None}
    if len(tasks) != 1 or None in tasks:
        raise RuntimeError(f"the 100 uploads went in {len(tasks)} tasks, not one")
    (task_id,) = tasks
    # The same event for both deliveries: a redelivery carries the first one's event id.
    event = completion_event(stack, "dashscope", str(task_id))
    backend = stack.dashscope.backend
    downloads_before = backend.counters.result_downloads
    replies: dict[str, float] = {}
    statuses: dict[str, int] = {}

    def deliver(name: str) -> None:
        started = time.perf_counter()
        statuses[name] = int(invoke_callback(event)["statusCode"])
        replies[name] = time.perf_counter() - started

    first = threading.Thread(target=deliver, args=("first",))
    first.start()
    first.join(EVENTBRIDGE_TIMEOUT_S)
    redelivered = first.is_alive()
    if redelivered:  # EventBridge has given up on the first delivery and sends the event again
        again = threading.Thread(target=deliver, args=("again",))
        again.start()
        again.join()
    first.join()
    states = Counter(job.state.value for ref in refs if (job := stack.job(ref.job_id())) is not None)
    downloads = backend.counters.result_downloads - downloads_before
    return {
        "files": PUSH_FILES,
        "first_delivery_s": round(replies["first"], 2),
        "redelivered_after_s": EVENTBRIDGE_TIMEOUT_S if redelivered else None,
        "redelivery_s": round(replies["again"], 2) if "again" in replies else None,
        "statuses": statuses,
        "result_downloads": downloads,
        "downloads_per_result": round(downloads / PUSH_FILES, 2),
        "job_states_after": dict(states),
    }


# ----- 3: a burst through the local stack as `up --instant` runs it -----------------------------------


class ReconcileReports:
    """The reports of the scheduled reconcile runs: how many jobs the reconcile function finished
    (the stack's schedule calls ``entrypoints.reconcile.handler`` by its module attribute)."""

    def __init__(self) -> None:
        from bucketscribe.entrypoints import reconcile

        self._module = reconcile
        self._handler = reconcile.handler
        self.finished = 0
        self.failed = 0
        self._lock = threading.Lock()

        def counting(event: dict[str, Any], context: Any) -> dict[str, Any]:
            report = self._handler(event, context)
            with self._lock:
                self.finished += int(report.get("finished", 0))
                self.failed += int(report.get("failed", 0))
            return report

        setattr(reconcile, "handler", counting)  # noqa: B010 - a module's function, swapped for a while

    def restore(self) -> None:
        setattr(self._module, "handler", self._handler)  # noqa: B010


def jobs_final(stack: Any, refs: list[Any], timeout_s: float) -> dict[str, Any]:
    """Every upload's job once all are final (or the timeout passed), read in batches: one request
    per look, so the waiting costs the pipeline (same process, same moto) next to nothing."""
    from bucketscribe.domain.job import Job

    dynamodb = stack.client("dynamodb")
    table = stack.options.names.jobs_table
    pending = {ref.job_id() for ref in refs}
    final: dict[str, Any] = {}
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        time.sleep(0.5)
        for start in range(0, len(pending), 100):
            chunk = sorted(pending)[start : start + 100]
            keys = [{"id": {"S": job_id}} for job_id in chunk]
            response = dynamodb.batch_get_item(RequestItems={table: {"Keys": keys, "ConsistentRead": True}})
            for item in response["Responses"].get(table, []):
                job = Job.model_validate_json(item["doc"]["S"])
                if job.state.is_final:
                    final[job.id] = job
        pending -= set(final)
    return final


def calls_by_function(calls: Iterable[Any], files: int) -> dict[str, float]:
    """The functions' AWS calls per file, by the thread they ran in (the stack's dispatcher runs
    submit, its schedule reconcile, its HTTP server's workers the callbacks); the bench's own
    polls (the main thread) left out."""
    groups: Counter[str] = Counter()
    for call in calls:
        if call.thread == "MainThread":
            continue
        # A function's side-by-side workers carry its thread's name as their prefix.
        if call.thread.startswith("sqs-dispatcher"):
            groups["submit"] += 1
        elif call.thread.startswith("reconcile"):
            groups["reconcile"] += 1
        else:
            groups["callbacks and other threads"] += 1
    return {name: round(count / files, 2) for name, count in groups.most_common()}


def burst(
    stack: Any, calls_log: Any, uploads: Uploads, provider: str, reports: ReconcileReports
) -> dict[str, Any]:
    prefix = "incoming/" if provider == "sis" else "incoming/dashscope/"
    keys = [f"{prefix}burst-{provider}/{i:03d}.wav" for i in range(BURST_FILES)]
    tasks_before = stack.dashscope.backend.counters.tasks_created
    finished_before, failed_before = reports.finished, reports.failed
    with calls_log.record() as calls:
        started_at = datetime.now(UTC)
        started = time.perf_counter()
        refs = uploads.many(keys)
        upload_s = time.perf_counter() - started
        jobs = jobs_final(stack, refs, BURST_TIMEOUT_S)
    done = [job for job in jobs.values() if job.state.value == "DONE"]
    last = max((job.finished_at for job in jobs.values() if job.finished_at is not None), default=None)
    wall_s = (last - started_at).total_seconds() if last is not None else float("nan")
    result: dict[str, Any] = {
        "files": BURST_FILES,
        "upload_s": round(upload_s, 2),
        "to_last_transcript_s": round(wall_s, 2),
        "files_per_s": round(len(done) / wall_s, 2) if done else 0.0,
        "done": len(done),
        "not_final": BURST_FILES - len(jobs),
        "left_to_reconciler": reports.finished - finished_before,
        "failed_by_reconciler": reports.failed - failed_before,
        "aws_calls_per_file": calls_by_function(calls, BURST_FILES),
    }
    if provider == "dashscope":
        tasks = stack.dashscope.backend.counters.tasks_created - tasks_before
        result["tasks"] = tasks
        result["tasks_per_file"] = round(tasks / BURST_FILES, 3)
    return result


def dashscope_sample_loop(bare: Bare, urls: list[str]) -> dict[str, Any]:
    """DashScope's own sample: submit one file, wait for it (the SDK's ``wait``), download its
    result, then the next."""
    from dashscope.audio.asr import Transcription

    started = time.perf_counter()
    for url in urls:
        task = Transcription.async_call(model="paraformer-v2", file_urls=[url], **bare.dashscope)
        done = Transcription.wait(task.output.task_id, **bare.dashscope)
        result_url = done.output["results"][0]["transcription_url"]
        with urllib.request.urlopen(result_url, timeout=30) as response:
            response.read()
    seconds = time.perf_counter() - started
    return {"files": len(urls), "seconds": round(seconds, 2), "files_per_s": round(len(urls) / seconds, 2)}


def sis_poll_loop(bare: Bare, urls: list[str]) -> dict[str, Any]:
    """SIS one file at a time, its status asked every 0.1 s until it is done (no callback)."""
    from huaweicloudsdksis.v1 import (
        CollectTranscriberJobRequest,
        PostTranscriberJobs,
        PushTranscriberJobsRequest,
        TranscriberConfig,
    )

    started = time.perf_counter()
    for url in urls:
        config = TranscriberConfig(audio_format="auto", _property="chinese_16k_media")
        job_id = bare.sis.push_transcriber_jobs(
            PushTranscriberJobsRequest(body=PostTranscriberJobs(config=config, data_url=url))
        ).job_id
        while (
            bare.sis.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id)).status == "WAITING"
        ):
            time.sleep(SIS_POLL_S)
    seconds = time.perf_counter() - started
    return {"files": len(urls), "seconds": round(seconds, 2), "files_per_s": round(len(urls) / seconds, 2)}


def bursts(loop_files: int, log_dir: Path) -> dict[str, Any]:
    from bucketscribe_local.aws_calls import AwsCallLog
    from bucketscribe_local.commands import LOCAL_PROFILES
    from bucketscribe_local.stack import LocalStack, options_from_environment

    # What `bucketscribe up --instant` starts (its profiles, the stack's defaults: the deployed
    # batching, the reconciler every 30 s with its first look after 60 s), a free port.
    options = options_from_environment(
        instant=True, profiles_json=json.dumps(LOCAL_PROFILES), log_file=log_dir / "burst-functions.log"
    )
    results: dict[str, Any] = {
        "stack": {
            "batch_size": options.batch_size,
            "batching_window_s": options.batching_window_s,
            "reconcile_interval_s": options.reconcile_interval_s,
            "first_check_after_s": options.first_check_after_s,
        }
    }
    reports = ReconcileReports()
    try:
        with AwsCallLog() as calls_log, LocalStack(options) as stack:
            uploads, bare = Uploads(stack), Bare(stack)
            sources = [ref.key for ref in uploads.many([f"baseline/{i:03d}.wav" for i in range(loop_files)])]
            urls = [uploads.presigned(key) for key in sources]
            print(f"  SIS poll loop ({SIS_POLL_S} s), {loop_files} files ...", file=sys.stderr, flush=True)
            results["sis_poll_loop"] = sis_poll_loop(bare, urls)
            print(f"  SIS burst, {BURST_FILES} uploads ...", file=sys.stderr, flush=True)
            results["sis_burst"] = burst(stack, calls_log, uploads, "sis", reports)
            print(f"  DashScope sample loop, {loop_files} files ...", file=sys.stderr, flush=True)
            # The sample's tasks are not the pipeline's: their pushes (refused until the reconciler
            # would find them) would only load the machine while the loop runs.
            push_target = f"{stack.callback_url}/callbacks/dashscope"
            stack.dashscope.backend.set_push_target(None)
            results["dashscope_sample_loop"] = dashscope_sample_loop(bare, urls)
            stack.dashscope.backend.set_push_target(push_target)
            print(f"  DashScope burst, {BURST_FILES} uploads ...", file=sys.stderr, flush=True)
            results["dashscope_burst"] = burst(stack, calls_log, uploads, "dashscope", reports)
    finally:
        reports.restore()
    return results


# ----- the report ----------------------------------------------------------------------------------------


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the issue with the figure that meets it or not."""
    rows: list[dict[str, Any]] = []

    def row(name: str, figure: float, target: str, ok: bool) -> None:
        rows.append({"figure": name, "value": figure, "target": target, "verdict": verdict(ok)})

    warm = result["warm"]
    for provider in ("sis", "dashscope"):
        submit, callback = warm[provider]["submit"], warm[provider]["callback"]
        row(
            f"{provider} submit ms, × bare (median)",
            submit["ratio_median"],
            f"≤ {SUBMIT_RATIO_TARGET}×",
            submit["ratio_median"] <= SUBMIT_RATIO_TARGET,
        )
        row(
            f"{provider} submit AWS calls per file",
            submit["handler_aws_calls_per_file"],
            f"≤ {SUBMIT_CALLS_TARGET}",
            submit["handler_aws_calls_per_file"] <= SUBMIT_CALLS_TARGET,
        )
        row(
            f"{provider} callback ms, × bare (median)",
            callback["ratio_median"],
            f"≤ {CALLBACK_RATIO_TARGET}×",
            callback["ratio_median"] <= CALLBACK_RATIO_TARGET,
        )
    modelled = result["warm_aws_latencies"]
    for provider in ("sis", "dashscope"):
        for step, target in (("submit", SUBMIT_RATIO_TARGET), ("callback", CALLBACK_RATIO_TARGET)):
            figure = modelled[provider][step]["ratio_median"]
            row(f"{provider} {step} × bare, at AWS round trips", figure, f"≤ {target}×", figure <= target)
    burst = result["burst"]
    ds_ratio = ratio(burst["dashscope_burst"]["files_per_s"], burst["dashscope_sample_loop"]["files_per_s"])
    sis_ratio = ratio(burst["sis_burst"]["files_per_s"], burst["sis_poll_loop"]["files_per_s"])
    row(
        "DashScope burst files/s, × sample loop",
        ds_ratio,
        f"≥ {DASHSCOPE_LOOP_TARGET:g}×",
        ds_ratio >= DASHSCOPE_LOOP_TARGET,
    )
    row(
        "SIS burst files/s, × 0.1 s poll loop",
        sis_ratio,
        f"≥ {SIS_POLL_LOOP_TARGET:g}×",
        sis_ratio >= SIS_POLL_LOOP_TARGET,
    )
    tasks = burst["dashscope_burst"]["tasks_per_file"]
    row("DashScope tasks per file", tasks, f"≤ {TASKS_PER_FILE_TARGET}", tasks <= TASKS_PER_FILE_TARGET)
    for provider in ("sis", "dashscope"):
        left = burst[f"{provider}_burst"]["left_to_reconciler"] + burst[f"{provider}_burst"]["not_final"]
        row(
            f"{provider} burst files left to the reconciler",
            left,
            f"{LEFT_TO_RECONCILER_TARGET}",
            left <= LEFT_TO_RECONCILER_TARGET,
        )
    push = warm["push"]
    row(
        "100-file push, first delivery s",
        push["first_delivery_s"],
        f"≤ {PUSH_SECONDS_TARGET:g} s",
        push["first_delivery_s"] <= PUSH_SECONDS_TARGET,
    )
    row(
        "100-file push, downloads per result",
        push["downloads_per_result"],
        f"{DOWNLOADS_PER_RESULT_TARGET:g}",
        push["downloads_per_result"] <= DOWNLOADS_PER_RESULT_TARGET,
    )
    return rows


def print_warm(warm: dict[str, Any]) -> None:
    print(f"  {'':<22}{'handler ms':>12}{'bare ms':>10}{'× bare':>8}   {'AWS calls':>9}{'bare':>6}   by call")
    for provider in ("sis", "dashscope"):
        for step in ("submit", "callback"):
            figures = warm[provider][step]
            calls = ", ".join(
                f"{n} {name}" for name, n in figures["handler_aws_calls_by_name_per_file"].items()
            )
            name = f"{provider} {step}"
            print(
                f"  {name:<22}{figures['handler_ms_median']:>12.1f}{figures['bare_ms_median']:>10.1f}"
                f"{figures['ratio_median']:>8.2f}   {figures['handler_aws_calls_per_file']:>9.2f}"
                f"{figures['bare_aws_calls_per_file']:>6.2f}   {calls}"
            )
            moto = figures.get("moto_requests_per_file")
            if moto:
                print(
                    f"  {'':<22}at moto, per file: {moto['signed_by_botocore']} requests signed by "
                    f"botocore (retries too), {moto['pipeline_outside_botocore']} of ours outside botocore"
                )
    print("  (medians over the files; bare submit = conditional PutItem + presign + the SDK's submit;")
    print("   bare callback = the SDK's fetch (+ result download for DashScope) + 5 puts)")


def print_table(result: dict[str, Any]) -> None:
    warm, burst = result["warm"], result["burst"]
    print("\nwarm handlers per file (A/B interleaved, same emulators and moto)")
    print_warm(warm)
    model = aws_model()
    print(
        "\nthe same at the round trips of a function on AWS (bench/scale.py's stated latencies, added "
        "to every request at moto and the emulators: "
        + ", ".join(f"{kind} {seconds * 1000:g} ms" for kind, seconds in model.moto.items())
        + f", provider API answers and result files {model.provider_s * 1000:g} ms; a model, not a cloud)"
    )
    print_warm(result["warm_aws_latencies"])
    print(f"\nburst of {BURST_FILES} uploads through the local stack (`up --instant`: {burst['stack']})")
    for provider, loop_name in (("sis", "sis_poll_loop"), ("dashscope", "dashscope_sample_loop")):
        figures, loop = burst[f"{provider}_burst"], burst[loop_name]
        extra = (
            f", {figures['tasks']} tasks = {figures['tasks_per_file']} per file"
            if provider == "dashscope"
            else ""
        )
        print(
            f"  {provider:<10} {figures['files_per_s']:>6.2f} files/s "
            f"({figures['to_last_transcript_s']} s to the last transcript, uploads {figures['upload_s']} s); "
            f"baseline {loop_name.replace('_', ' ')} "
            f"{loop['files_per_s']:.2f} files/s = {ratio(figures['files_per_s'], loop['files_per_s']):.2f}×"
        )
        print(
            f"  {'':<10} {figures['done']} done, {figures['left_to_reconciler']} finished by the reconciler, "
            f"{figures['not_final']} not final{extra}"
        )
        warm_callback = warm[provider]["callback"]["handler_aws_calls_per_file"]
        print(
            f"  {'':<10} AWS calls per file by function: {figures['aws_calls_per_file']} "
            f"(a warm {provider} callback alone: {warm_callback})"
        )
    push = warm["push"]
    print(
        f"\n100-file DashScope push through the callback handler: first delivery {push['first_delivery_s']} s"
        + (
            f", redelivered after {push['redelivered_after_s']:g} s (took {push['redelivery_s']} s)"
            if push["redelivered_after_s"]
            else ""
        )
        + f"; {push['result_downloads']} result downloads = {push['downloads_per_result']} per result; "
        f"jobs after: {push['job_states_after']}; replies {push['statuses']}"
    )
    print("\ntargets (issue 17)")
    for row in result["targets"]:
        print(f"  {row['figure']:<44}{row['value']:>8}   target {row['target']:<9} {row['verdict']}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="100 files per warm figure and provider loop (default 30)"
    )
    args = parser.parse_args()
    files = 100 if args.full else 30
    cloud_files = 30 if args.full else 12
    # The functions' own logs go to files; the SDKs' chatter is not the table's.
    import logging

    logging.getLogger("dashscope").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-hot-path-") as tmp:
        started = time.perf_counter()
        result: dict[str, Any] = {
            "warm": warm_handlers(files, Path(tmp)),
            "warm_aws_latencies": warm_handlers(cloud_files, Path(tmp), aws_model()),
            "burst": bursts(files, Path(tmp)),
        }
        result["targets"] = targets(result)
        result["bench_s"] = round(time.perf_counter() - started, 1)
    publish("hot_path", result, quick=not args.full, show=print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

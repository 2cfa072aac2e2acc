"""Soak: uploads through the whole local stack with every fault at once — does the promise hold?

The promise: at most ``max_provider_jobs`` (2) provider jobs per upload, every upload ends DONE or
FAILED with a reason (or SUPERSEDED when its key was uploaded again), no forged or foreign result
ever written, nothing written beside a key by a version that no longer stands there, no signed URL
in any report or log. This run breaks everything the pipeline exists to survive, at the same time:

- every notification is delivered three times, and a few poison records ride in the batches;
- 30 % of callbacks/pushes are dropped and 30 % duplicated; 20 % come with a forged twin naming
  another job's task — another upload's, under lost answers, as SIS mixing callbacks up would;
- 30 % of submissions are answered 503 (the provider may or may not have acted);
- 10 % of submissions are created and then lose their answer (5xx);
- 5 % of provider jobs fail;
- the submit worker dies right after the provider accepted, on 5 % of submissions;
- the job store is down for 10 s, and later for 40 s (longer than any write's retries);
- one key in 25 is uploaded again while its first version is at the provider;
- a few uploads cannot be read at all (HEAD answers 400, as for an object stored with a
  customer-provided key), and garbage sits in the dead-letter queue.

Half the uploads go to SIS, half to DashScope; recordings differ in length and bytes. The digest
engine gives each recording its own words, so a transcript that is not its upload's shows. Provider
jobs are counted at the emulators (``GET /_emulator/jobs``), as the bill would count them.

Run: ``.venv/bin/python bench/soak.py [--uploads 500] [--seed 7]`` (``make soak``). Prints a table
and, last, one JSON line with exactly: uploads, done, failed_with_reason, superseded, stuck, lost,
provider_jobs, duplicate_provider_jobs, max_provider_jobs_per_upload, forged_accepted,
foreign_words_written, superseded_writes, outputs_rewritten, reconciler_runs_failed,
signed_urls_in_reports, wall_s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import wave
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

SAMPLE_RATE = 8_000
PROFILES = [
    {"name": "default", "prefix": ""},
    {"name": "dashscope", "prefix": "ds/", "provider": "dashscope"},
]
OVERWRITE_EVERY = 25  # one key in this many is uploaded again while its first version is in flight
SEALED_EVERY = 97  # one upload in this many cannot be read (HEAD answers 400)
GARBAGE_LETTERS = [
    "\x00 not a notification",
    json.dumps({"Records": [{"s3": {"bucket": {"name": "no such bucket!"}, "object": {"key": "x.wav"}}}]}),
    json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "recordings"}),
]
# What a leaked presigned URL or callback token looks like in text.
SIGNED_URL_MARKS = ("X-Amz-Signature", "X-Amz-Credential", "X-Amz-Security-Token", "Signature=", "token=")
POISON_BODIES = [
    "this is not a notification",
    json.dumps({"Records": [{"s3": {"bucket": {"name": ""}, "object": {"key": "incoming/x.wav"}}}]}),
    "[" * 50_000 + "]" * 50_000,
    json.dumps({"Records": [{"s3": {"bucket": {"name": "recordings"}, "object": {"key": "", "size": -1}}}]}),
]
KEYS = (
    "uploads",
    "done",
    "failed_with_reason",
    "superseded",
    "stuck",
    "lost",
    "provider_jobs",
    "duplicate_provider_jobs",
    "max_provider_jobs_per_upload",
    "forged_accepted",
    "foreign_words_written",
    "superseded_writes",
    "outputs_rewritten",
    "reconciler_runs_failed",
    "signed_urls_in_reports",
    "wall_s",
)


def recording(index: int, rng: random.Random) -> bytes:
    """An 8 kHz WAV of 0.5–2.5 s whose samples differ per upload (so does its digest transcript),
    as real recordings differ in length."""
    buffer = io.BytesIO()
    frames = SAMPLE_RATE // 2 + rng.randrange(0, 2 * SAMPLE_RATE)
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(rng.randbytes(frames * 2) + index.to_bytes(4, "little"))
    return buffer.getvalue()


def fault_plan(seed: int) -> Any:
    from bucketscribe_local.faults import FaultPlan

    return FaultPlan(
        drop_callback_rate=0.3,
        duplicate_callback_rate=0.3,
        callback_for_unknown_job=0.2,
        submit_error_rate=0.3,
        submit_error_status=503,
        lost_response_rate=0.1,
        lost_response_mode="error",
        job_failure_rate=0.05,
        seed=seed,
    )


def stack_options(log_file: Path, seed: int) -> Any:
    from bucketscribe_local.aws_resources import LocalAwsNames
    from bucketscribe_local.pipeline_faults import PipelineFaultPlan, StorageErrorRule
    from bucketscribe_local.stack import LocalStackOptions

    return LocalStackOptions(
        digest=True,
        profiles_json=json.dumps(PROFILES),
        log_file=log_file,
        batch_size=10,
        batching_window_s=0.5,
        dashscope_max_files_per_task=20,
        reconcile_interval_s=1.0,
        first_check_after_s=3,
        max_check_interval_s=6,
        claim_lease_s=10,
        evidence_wait_s=20,
        search_delay_s=2,
        submit_retry_after_s=1,
        names=LocalAwsNames(visibility_timeout_s=15),
        pipeline_faults=PipelineFaultPlan(
            crash_after_submit_rate=0.05,
            storage_errors=[StorageErrorRule(op="head", key_contains="/sealed-", status=400)],
            seed=seed,
        ),
    )


def notification(ref: Any) -> str:
    """The event S3 sends for ``ref`` (a versioned bucket's carries the version id)."""
    uploaded: dict[str, Any] = {
        "key": urllib.parse.quote_plus(ref.key, safe="/"),
        "size": ref.size,
        "eTag": ref.etag,
    }
    if ref.version_id:
        uploaded["versionId"] = ref.version_id
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ref.bucket}, "object": uploaded}}
    return json.dumps({"Records": [record]})


def soak_key(index: int) -> str:
    name = f"sealed-{index:04d}" if index % SEALED_EVERY == SEALED_EVERY - 1 else f"{index:04d}"
    return f"incoming/{'ds/' if index % 2 else ''}soak/{name}.wav"


def upload_all(stack: Any, count: int, rng: random.Random) -> dict[str, bytes]:
    """Upload ``count`` recordings; every notification reaches the queue three times in all."""
    bodies = {soak_key(i): recording(i, rng) for i in range(count)}
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda item: put_and_notify(stack, *item), bodies.items()))
    sqs = stack.client("sqs")
    for body in POISON_BODIES:
        sqs.send_message(QueueUrl=stack.resources.queue_url, MessageBody=body)
    for body in GARBAGE_LETTERS:
        sqs.send_message(QueueUrl=stack.resources.dead_letter_queue_url, MessageBody=body)
    return bodies


def put_and_notify(stack: Any, key: str, body: bytes) -> None:
    ref = stack.upload(body, key, content_type="audio/wav")
    for _ in range(2):  # the bucket's own notification, plus two re-deliveries
        stack.client("sqs").send_message(QueueUrl=stack.resources.queue_url, MessageBody=notification(ref))


def overwrite_some(
    stack: Any, bodies: dict[str, bytes], rng: random.Random, deadline: float
) -> dict[str, bytes]:
    """Upload a second version of one key in ``OVERWRITE_EVERY`` once its first is at the provider
    (or has ended); returns the first versions' bodies by key."""
    from bucketscribe.domain.job import JobState

    chosen = [key for i, key in enumerate(bodies) if i % OVERWRITE_EVERY == 3 and "/sealed-" not in key]
    firsts: dict[str, bytes] = {}
    waiting = set(chosen)
    while waiting and time.monotonic() < deadline:
        for key in sorted(waiting):
            jobs = stack.jobs_for_key(key)
            if jobs and jobs[0].state not in (JobState.ACCEPTED, JobState.SUBMITTING):
                firsts[key] = bodies[key]
                bodies[key] = recording(10_000 + len(firsts), rng)
                put_and_notify(stack, key, bodies[key])
                waiting.discard(key)
        time.sleep(0.5)
    return firsts


def outages(stack: Any, plan: tuple[tuple[float, float], ...], stop: threading.Event) -> threading.Thread:
    """Job-store outages: (start after s, lasting s) each."""

    def run() -> None:
        started = time.monotonic()
        for at, seconds in plan:
            if stop.wait(max(0.0, started + at - time.monotonic())):
                return
            stack.pipeline_faults.job_store_outage(seconds)

    thread = threading.Thread(target=run, name="job-store-outages", daemon=True)
    thread.start()
    return thread


def latest_job(stack: Any, key: str) -> Any:
    """The job of the upload that stands under ``key`` now (matched by ETag: an upload we cannot
    read was answered from its notification, which names its ETag)."""
    etag = stack.ref_for(key).etag
    return next((job for job in stack.jobs_for_key(key) if job.source.etag == etag), None)


def wait_for_answers(stack: Any, bodies: dict[str, bytes], *, deadline: float) -> None:
    """Until every key's latest upload has a final job (or the deadline)."""
    waiting = set(bodies)
    while waiting and time.monotonic() < deadline:
        waiting = {key for key in waiting if not ((job := latest_job(stack, key)) and job.state.is_final)}
        time.sleep(1.0)


def listed_jobs(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_emulator/jobs", timeout=60) as response:
        jobs: list[dict[str, Any]] = json.loads(response.read())["jobs"]
    return jobs


def key_of(file_url: str, bucket: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(file_url).path)
    return path.split(f"/{bucket}/", 1)[-1]


def provider_jobs_per_upload(stack: Any) -> tuple[Counter[str], Counter[str]]:
    """Provider jobs by key, and by upload (key and version: the presigned URL names the version)."""
    by_key: Counter[str] = Counter()
    by_upload: Counter[str] = Counter()
    for url in (stack.sis.url, stack.dashscope.url):
        for row in listed_jobs(url):
            key = key_of(row["file_url"], stack.bucket)
            version = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(row["file_url"]).query)).get(
                "versionId"
            )
            by_key[key] += 1
            by_upload[f"{key}?{version}"] += 1
    return by_key, by_upload


def duplicate_case(job: Any) -> str:
    """Why an upload has a second provider job, from its attempts' record."""
    abandoned = [a for a in job.attempts if a.state.value in ("ABANDONED", "ACCEPTED") and a.error]
    messages = " ".join(a.error.message for a in abandoned if a.error)
    if "worker stopped" in messages:
        case = "worker died after the provider accepted, and the attempt's callback was lost"
    elif messages:
        case = "answer lost, and the attempt's callback was lost"
    else:
        case = "unexplained"
    return f"{job.provider}: {case}"


def rewritten_outputs(stack: Any, overwritten: set[str]) -> int:
    """Outputs written more than once (a key uploaded again rightly gets its outputs again)."""
    s3 = stack.client("s3")
    versions: Counter[str] = Counter()
    again = {stack.layout.output_key(key, "") for key in overwritten}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.bucket, Prefix="transcripts/"):
        for version in page.get("Versions", []):
            key = version["Key"]
            if key.endswith((".error.json", ".speech.ogg")) or "/_receipts/" in key:
                continue
            if not any(key.startswith(prefix) for prefix in again):
                versions[key] += 1
    return sum(1 for count in versions.values() if count > 1)


def signed_urls_in_reports(stack: Any, log_file: Path) -> int:
    """Signed URLs or callback tokens in what users and operators read: error reports, job records
    (the status API's source) and the functions' log."""
    texts = [
        stack.read_output(key).decode()
        for key in stack.list_keys("transcripts/")
        if key.endswith(".error.json")
    ]
    dynamodb = stack.client("dynamodb")
    for page in dynamodb.get_paginator("scan").paginate(TableName=stack.options.names.jobs_table):
        texts.extend(item["doc"]["S"] for item in page.get("Items", []) if "doc" in item)
    if log_file.exists():
        texts.append(log_file.read_text(encoding="utf-8", errors="replace"))
    return sum(text.count(mark) for text in texts for mark in SIGNED_URL_MARKS)


def _stuck_view(job: Any) -> dict[str, Any]:
    return {
        "key": job.source.key,
        "provider": job.provider,
        "state": job.state.value,
        "attempts": [f"{a.number}:{a.state.value}:{a.task_id or '-'}" for a in job.attempts],
        "error": job.error.code if job.error else None,
        "next_check_at": job.next_check_at.isoformat() if job.next_check_at else None,
        "claimed_until": job.claimed_until.isoformat() if job.claimed_until else None,
        "part_of": job.part_of is not None,
        "parts": len(job.parts),
        "capacity_waits": job.capacity_waits,
        "updated_at": job.updated_at.isoformat(),
    }


def measure(
    stack: Any, bodies: dict[str, bytes], firsts: dict[str, bytes], wall_s: float, log_file: Path
) -> dict[str, Any]:
    from bucketscribe_local.digest_engine import digest_text

    from bucketscribe.domain.job import JobState
    from bucketscribe.domain.transcript import Transcript

    per_key, per_upload = provider_jobs_per_upload(stack)
    words_of = {digest_text(body): key for key, body in bodies.items()}
    old_words = {digest_text(body) for body in firsts.values()}
    done = failed = superseded = stuck = lost = forged = foreign = superseded_writes = 0
    cases: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    stuck_jobs: list[Any] = []
    for key, body in bodies.items():
        jobs = stack.jobs_for_key(key)
        latest = latest_job(stack, key)
        if latest is None:
            lost += 1
            continue
        superseded += sum(1 for job in jobs if job.state is JobState.SUPERSEDED)
        stale = [job for job in jobs if not job.state.is_final and job.id != latest.id]
        stuck += len(stale)
        stuck_jobs.extend(stale)
        report_key = stack.layout.output_key(key, "error.json")
        report = (
            json.loads(stack.read_output(report_key)) if report_key in stack.list_keys(report_key) else None
        )
        if report is not None and latest.state is not JobState.FAILED:
            superseded_writes += 1  # an error report beside a transcript (or an upload still going)
        if latest.state is JobState.DONE:
            done += 1
            written = Transcript.model_validate_json(stack.read_output(stack.layout.output_key(key, "json")))
            text = written.text
            forged += text != digest_text(body)
            foreign += words_of.get(text, key) != key
            superseded_writes += text in old_words or (
                written.source is not None and written.source.etag != latest.source.etag
            )
        elif latest.state is JobState.FAILED:
            failed += bool(latest.error and latest.error.message and report is not None)
            failures[latest.error.code if latest.error else "?"] += 1
        else:
            stuck += 1
            stuck_jobs.append(latest)
        if (extra := per_key[key] - 1 - (key in firsts)) > 0:
            cases[duplicate_case(latest)] += extra
    return {
        "uploads": len(bodies) + len(firsts),
        "done": done,
        "failed_with_reason": failed,
        "superseded": superseded,
        "stuck": stuck,
        "lost": lost,
        "provider_jobs": sum(per_upload.values()),
        "duplicate_provider_jobs": sum(max(0, n - 1) for n in per_upload.values()),
        "max_provider_jobs_per_upload": max(per_upload.values(), default=0),
        "forged_accepted": forged,
        "foreign_words_written": foreign,
        "superseded_writes": superseded_writes,
        "outputs_rewritten": rewritten_outputs(stack, set(firsts)),
        "reconciler_runs_failed": stack.reconcile_runs_failed,
        "signed_urls_in_reports": signed_urls_in_reports(stack, log_file),
        "wall_s": round(wall_s, 1),
        "duplicates_by_case": dict(cases),
        "failures_by_code": dict(failures),
        # What a job not final at the end was doing: its state, attempts and next look.
        "stuck_jobs": [_stuck_view(job) for job in stuck_jobs],
        "faults_seen": {
            "sis": stack.sis.backend.counter_values(),
            "dashscope": stack.dashscope.backend.counter_values(),
            "pipeline": stack.pipeline_faults.counters.model_dump(),
            "submit_crashes": stack.dispatcher.crashes,
        },
    }


def run(uploads: int, seed: int, timeout_s: float, log_file: Path | None) -> dict[str, Any]:
    from bucketscribe_local.stack import LocalStack

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        started = time.monotonic()
        log = log_file or Path(tmp) / "functions.log"
        with LocalStack(stack_options(log, seed)) as stack:
            s3 = stack.client("s3")
            s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
            stack.set_faults(fault_plan(seed))
            stop = threading.Event()
            # 10 s, then 40 s: longer than a write's retries (about 24 s) in the middle of the run.
            outage_thread = outages(stack, ((15.0, 10.0), (60.0, 40.0)), stop)
            bodies = upload_all(stack, uploads, rng)
            firsts = overwrite_some(stack, bodies, rng, deadline=started + timeout_s / 3)
            wait_for_answers(stack, bodies, deadline=started + timeout_s)
            wall_s = time.monotonic() - started
            stop.set()
            outage_thread.join(timeout=5)
            return measure(stack, bodies, firsts, wall_s, log)


def show(result: dict[str, Any]) -> None:
    print(f"\nSoak: {result['uploads']} uploads, every fault at once ({result['wall_s']} s)\n")
    width = max(len(k) for k in KEYS)
    for key in KEYS:
        print(f"  {key:<{width}}  {result[key]}")
    print("\n  duplicate provider jobs by case:", json.dumps(result["duplicates_by_case"]) or "none")
    print("  failures by code:", json.dumps(result["failures_by_code"]))
    for view in result["stuck_jobs"]:
        print("  stuck:", json.dumps(view))
    print("  faults seen:", json.dumps(result["faults_seen"]))


def main() -> None:
    # The functions' metrics would print as EMF lines; this run reports its own figures.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout-s", type=float, default=540.0, help="give up waiting after this")
    parser.add_argument("--quick", action="store_true", help="60 uploads (a smoke run)")
    parser.add_argument("--log-file", type=Path, help="keep the functions' logs here (default: discarded)")
    args = parser.parse_args()
    uploads = 60 if args.quick else args.uploads
    result = run(uploads, args.seed, args.timeout_s, args.log_file)
    publish("soak", result, quick=args.quick, show=show)
    print(json.dumps({key: result[key] for key in KEYS}))


if __name__ == "__main__":
    main()

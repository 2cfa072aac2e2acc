"""Soak: uploads through the whole local stack with every fault at once — does the promise hold?

The promise: exactly one provider job per upload, every upload ends DONE or FAILED with a
reason, no forged result ever written. This run breaks everything the pipeline exists to survive,
at the same time:

- every notification is delivered three times, and a few poison records ride in the batches;
- 30 % of callbacks/pushes are dropped and 30 % duplicated; some come with a forged twin naming
  another job's task;
- 30 % of submissions are answered 503 (the provider may or may not have acted);
- 10 % of submissions are created and then lose their answer (5xx);
- 5 % of provider jobs fail;
- the submit worker dies right after the provider accepted, on 5 % of submissions;
- the job store is down twice for 10 s.

Half the uploads go to SIS, half to DashScope. The digest engine gives each recording its own
words, so a transcript that is not its upload's shows. Provider jobs are counted at the
emulators (``GET /_emulator/jobs``), as the bill would count them.

Run: ``.venv/bin/python bench/soak.py [--uploads 500] [--seed 7]`` (``make soak``). Prints a table
and, last, one JSON line with exactly: uploads, done, failed_with_reason, stuck, lost,
provider_jobs, duplicate_provider_jobs, forged_accepted, outputs_rewritten, wall_s.
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
    "stuck",
    "lost",
    "provider_jobs",
    "duplicate_provider_jobs",
    "forged_accepted",
    "outputs_rewritten",
    "wall_s",
)


def recording(index: int, rng: random.Random) -> bytes:
    """A short 8 kHz WAV whose samples differ per upload (so does its digest transcript)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        frames = bytes(rng.getrandbits(8) for _ in range(SAMPLE_RATE // 2 * 2))
        wav.writeframes(frames + index.to_bytes(4, "little"))
    return buffer.getvalue()


def fault_plan(seed: int) -> Any:
    from bucketscribe.local.faults import FaultPlan

    return FaultPlan(
        drop_callback_rate=0.3,
        duplicate_callback_rate=0.3,
        callback_for_unknown_job=0.05,
        submit_error_rate=0.3,
        submit_error_status=503,
        lost_response_rate=0.1,
        lost_response_mode="error",
        job_failure_rate=0.05,
        seed=seed,
    )


def stack_options(log_file: Path, seed: int) -> Any:
    from bucketscribe.local.aws_resources import LocalAwsNames
    from bucketscribe.local.pipeline_faults import PipelineFaultPlan
    from bucketscribe.local.stack import LocalStackOptions

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
        pipeline_faults=PipelineFaultPlan(crash_after_submit_rate=0.05, seed=seed),
    )


def notification(bucket: str, key: str) -> str:
    record = {
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": urllib.parse.quote_plus(key, safe="/")}},
    }
    return json.dumps({"Records": [record]})


def upload_all(stack: Any, count: int, rng: random.Random) -> dict[str, bytes]:
    """Upload ``count`` recordings; every notification reaches the queue three times in all."""
    bodies = {f"incoming/{'ds/' if i % 2 else ''}soak/{i:04d}.wav": recording(i, rng) for i in range(count)}
    sqs = stack.client("sqs")
    queue = stack.resources.queue_url

    def one(item: tuple[str, bytes]) -> None:
        key, body = item
        stack.upload(body, key, content_type="audio/wav")
        for _ in range(2):  # the bucket's own notification, plus two re-deliveries
            sqs.send_message(QueueUrl=queue, MessageBody=notification(stack.bucket, key))

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, bodies.items()))
    for body in POISON_BODIES:
        sqs.send_message(QueueUrl=queue, MessageBody=body)
    return bodies


def outages(stack: Any, at_s: tuple[float, ...], seconds: float, stop: threading.Event) -> threading.Thread:
    def run() -> None:
        started = time.monotonic()
        for at in at_s:
            if stop.wait(max(0.0, started + at - time.monotonic())):
                return
            stack.pipeline_faults.job_store_outage(seconds)

    thread = threading.Thread(target=run, name="job-store-outages", daemon=True)
    thread.start()
    return thread


def listed_jobs(url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{url}/_emulator/jobs", timeout=60) as response:
        jobs: list[dict[str, Any]] = json.loads(response.read())["jobs"]
    return jobs


def key_of(file_url: str, bucket: str) -> str:
    path = urllib.parse.unquote(urllib.parse.urlsplit(file_url).path)
    return path.split(f"/{bucket}/", 1)[-1]


def provider_jobs_per_upload(stack: Any) -> Counter[str]:
    counts: Counter[str] = Counter()
    for url in (stack.sis.url, stack.dashscope.url):
        for row in listed_jobs(url):
            counts[key_of(row["file_url"], stack.bucket)] += 1
    return counts


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


def rewritten_outputs(stack: Any) -> int:
    s3 = stack.client("s3")
    versions: Counter[str] = Counter()
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=stack.bucket, Prefix="transcripts/"):
        for version in page.get("Versions", []):
            if not version["Key"].endswith((".error.json", ".speech.ogg")):
                versions[version["Key"]] += 1
    return sum(1 for count in versions.values() if count > 1)


def measure(stack: Any, bodies: dict[str, bytes], wall_s: float) -> dict[str, Any]:
    from bucketscribe.job import JobState
    from bucketscribe.local.digest_engine import digest_text
    from bucketscribe.model import Transcript

    per_upload = provider_jobs_per_upload(stack)
    done = failed = stuck = lost = forged = 0
    cases: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    for key, body in bodies.items():
        jobs = stack.jobs_for_key(key)
        if not jobs:
            lost += 1
            continue
        job = jobs[0]
        if job.state is JobState.DONE:
            done += 1
            written = Transcript.model_validate_json(stack.read_output(stack.layout.output_key(key, "json")))
            forged += written.text != digest_text(body)
        elif job.state is JobState.FAILED:
            report = stack.layout.output_key(key, "error.json")
            has_report = report in stack.list_keys(report)
            failed += bool(job.error and job.error.message and has_report)
            failures[job.error.code if job.error else "?"] += 1
        else:
            stuck += 1
        if per_upload[key] > 1:
            cases[duplicate_case(job)] += per_upload[key] - 1
    return {
        "uploads": len(bodies),
        "done": done,
        "failed_with_reason": failed,
        "stuck": stuck,
        "lost": lost,
        "provider_jobs": sum(per_upload.values()),
        "duplicate_provider_jobs": sum(max(0, n - 1) for n in per_upload.values()),
        "forged_accepted": forged,
        "outputs_rewritten": rewritten_outputs(stack),
        "wall_s": round(wall_s, 1),
        "duplicates_by_case": dict(cases),
        "failures_by_code": dict(failures),
        "faults_seen": {
            "sis": stack.sis.backend.counter_values(),
            "dashscope": stack.dashscope.backend.counter_values(),
            "pipeline": stack.pipeline_faults.counters.model_dump(),
            "submit_crashes": stack.dispatcher.crashes,
        },
    }


def run(uploads: int, seed: int, timeout_s: float, log_file: Path | None) -> dict[str, Any]:
    from bucketscribe.local.stack import LocalStack

    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="bench-soak-") as tmp:
        started = time.monotonic()
        with LocalStack(stack_options(log_file or Path(tmp) / "functions.log", seed)) as stack:
            s3 = stack.client("s3")
            s3.put_bucket_versioning(Bucket=stack.bucket, VersioningConfiguration={"Status": "Enabled"})
            stack.set_faults(fault_plan(seed))
            stop = threading.Event()
            outage_thread = outages(stack, (15.0, 60.0), 10.0, stop)
            bodies = upload_all(stack, uploads, rng)
            refs = [stack.ref_for(key) for key in bodies]
            stack.wait_for_jobs(
                refs, timeout_s=max(1.0, timeout_s - (time.monotonic() - started)), poll_s=1.0
            )
            wall_s = time.monotonic() - started
            stop.set()
            outage_thread.join(timeout=5)
            return measure(stack, bodies, wall_s)


def show(result: dict[str, Any]) -> None:
    print(f"\nSoak: {result['uploads']} uploads, every fault at once ({result['wall_s']} s)\n")
    width = max(len(k) for k in KEYS)
    for key in KEYS:
        print(f"  {key:<{width}}  {result[key]}")
    print("\n  duplicate provider jobs by case:", json.dumps(result["duplicates_by_case"]) or "none")
    print("  failures by code:", json.dumps(result["failures_by_code"]))
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

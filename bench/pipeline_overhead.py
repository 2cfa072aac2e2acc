"""The pipeline's own cost: the whole local stack with the instant speech engine.

Starts a LocalStack (moto S3/SQS/DynamoDB, SIS emulator with ``FixedSpeechEngine``, callback
endpoint, SQS dispatcher feeding the real submit handler), uploads N one-second WAVs under
the input prefix and waits until every job is DONE. Because recognition is instant, what is
measured is everything around it: S3 notification → SQS → submit handler → SIS submission →
callback → transcript rendering and writing.

Run: ``.venv/bin/python bench/pipeline_overhead.py [--quick] [--files N]``
"""

from __future__ import annotations

import argparse
import io
import math
import resource
import statistics
import sys
import tempfile
import time
import wave
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

SAMPLE_RATE = 16_000


def one_second_wav() -> bytes:
    """A 1 s 16 kHz mono 16-bit WAV of silence-ish low noise (content does not matter here)."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        # A quiet sawtooth so the file is not all zeros; the instant engine ignores it anyway.
        frames = bytearray()
        for i in range(SAMPLE_RATE):
            frames += int(((i % 100) - 50) * 20).to_bytes(2, "little", signed=True)
        wav.writeframes(bytes(frames))
    return buffer.getvalue()


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with 10 values p95 is the largest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _wait_for_callbacks(stack: Any, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        counters = stack.sis.backend.counters()
        if counters.callbacks_sent + counters.callbacks_failed + counters.jobs_failed >= expected:
            return
        time.sleep(0.05)


def _median_s(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def run(files: int, timeout_s: float) -> dict[str, Any]:
    from bucketscribe_local.stack import LocalStack, LocalStackOptions

    from bucketscribe.domain.job import JobState
    from bucketscribe.domain.upload import ObjectRef

    body = one_second_wav()
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp:
        # Function logs go to a file so they do not interleave with the table.
        options = LocalStackOptions(instant=True, log_file=Path(tmp) / "functions.log")
        started = time.perf_counter()
        stack = LocalStack(options).start()
        startup_s = time.perf_counter() - started
        try:
            prefix = stack.options.names.input_prefix
            uploaded_at: dict[str, datetime] = {}
            refs: list[ObjectRef] = []
            first_upload = time.perf_counter()
            for index in range(files):
                key = f"{prefix}bench/clip-{index:04d}.wav"
                uploaded_at[key] = datetime.now(UTC)
                refs.append(stack.upload(body, key, content_type="audio/wav"))
            upload_loop_s = time.perf_counter() - first_upload
            # Polling N jobs in DynamoDB would compete with the pipeline for this process's
            # CPU, so wait on the emulator's in-memory counters (a callback counts as sent once
            # the callback handler answered, i.e. after it wrote the job) and read jobs once.
            _wait_for_callbacks(stack, files, timeout_s)
            jobs = stack.wait_for_jobs(refs, timeout_s=5.0, poll_s=0.5)
            noticed_s = time.perf_counter() - first_upload
            counters = stack.sis.backend.counters()
        finally:
            stack.stop()

    done = [job for job in jobs.values() if job.state is JobState.DONE]
    not_done = files - len(done)
    latencies = [
        (job.finished_at - uploaded_at[key]).total_seconds()
        for key, job in jobs.items()
        if job.state is JobState.DONE and job.finished_at is not None
    ]
    # Where the time goes, per job: notification → SQS → submit handler picks it up (created),
    # the submit handler's work up to the SIS answer (submitted), SIS job + callback + outputs.
    to_created = [
        (j.created_at - uploaded_at[k]).total_seconds() for k, j in jobs.items() if j.state is JobState.DONE
    ]
    to_submitted = [
        (j.submitted_at - j.created_at).total_seconds() for j in done if j.submitted_at is not None
    ]
    to_finished = [
        (j.finished_at - j.submitted_at).total_seconds()
        for j in done
        if j.submitted_at is not None and j.finished_at is not None
    ]
    first_upload_at = min(uploaded_at.values())
    last_finished = max(job.finished_at for job in done if job.finished_at is not None) if done else None
    wall_s = (last_finished - first_upload_at).total_seconds() if last_finished else float("nan")
    return {
        "files": files,
        "file_bytes": len(body),
        "stack_startup_s": round(startup_s, 3),
        "upload_loop_s": round(upload_loop_s, 3),
        "wall_s": round(wall_s, 3),
        "wall_s_as_polled": round(noticed_s, 3),
        "jobs_per_s": round(len(done) / wall_s, 2) if done else 0.0,
        "latency_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "latency_p95_s": round(percentile(latencies, 0.95), 3) if latencies else None,
        "latency_max_s": round(max(latencies), 3) if latencies else None,
        "stage_median_s": {
            "upload_to_job_created": _median_s(to_created),
            "created_to_submitted": _median_s(to_submitted),
            "submitted_to_done": _median_s(to_finished),
        },
        "jobs_done": len(done),
        "jobs_not_done": not_done,
        "sis_submissions": counters.submissions_received,
        "sis_jobs_accepted": counters.jobs_accepted,
        "sis_callbacks_sent": counters.callbacks_sent,
        "check_submissions_equal_files": counters.submissions_received == files,
        "check_all_done": not_done == 0,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }


def print_table(result: dict[str, Any]) -> None:
    def ok(flag: bool) -> str:
        return "OK" if flag else "FAILED"

    rows = [
        ("files uploaded (1 s WAV each)", f"{result['files']} × {result['file_bytes']} B"),
        ("stack start-up", f"{result['stack_startup_s']:.2f} s"),
        ("upload loop (put_object × N)", f"{result['upload_loop_s']:.2f} s"),
        ("wall time, first upload → last DONE", f"{result['wall_s']:.2f} s"),
        ("throughput", f"{result['jobs_per_s']:.1f} jobs/s"),
        ("latency upload → DONE, median", f"{result['latency_median_s']} s"),
        ("latency upload → DONE, p95", f"{result['latency_p95_s']} s"),
        ("latency upload → DONE, max", f"{result['latency_max_s']} s"),
        ("  of which upload → job created, median", f"{result['stage_median_s']['upload_to_job_created']} s"),
        ("  of which created → submitted, median", f"{result['stage_median_s']['created_to_submitted']} s"),
        ("  of which submitted → DONE, median", f"{result['stage_median_s']['submitted_to_done']} s"),
        ("peak RSS of the process", f"{result['peak_rss_mb']:.0f} MB"),
        (
            "check: SIS submissions == files",
            f"{result['sis_submissions']} == {result['files']}  "
            + ok(result["check_submissions_equal_files"]),
        ),
        (
            "check: every job DONE",
            f"{result['jobs_done']}/{result['files']}  {ok(result['check_all_done'])}",
        ),
    ]
    width = max(len(name) for name, _ in rows)
    print("pipeline overhead (instant engine)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 files instead of 50")
    parser.add_argument("--files", type=int, help="number of files (overrides --quick)")
    parser.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for the jobs")
    args = parser.parse_args()
    files = args.files or (10 if args.quick else 50)
    result = run(files, args.timeout)
    publish("pipeline_overhead", result, quick=bool(args.quick), show=print_table)
    checks = result["check_submissions_equal_files"] and result["check_all_done"]
    return 0 if checks else 1


if __name__ == "__main__":
    sys.exit(main())

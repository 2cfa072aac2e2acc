"""``bucketscribe up | transcribe | demo``: the local stack as a user drives it."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, ClassVar, TextIO

from bucketscribe.job import Job, JobState
from bucketscribe.local.stack import LocalStack, LocalStackOptions
from bucketscribe.media.sniff import kind_by_extension
from bucketscribe.model import ObjectRef

# Stereo calls get per-channel (agent/customer) recognition on SIS, dashscope/ goes to
# DashScope Paraformer, everything else the default (SIS).
LOCAL_PROFILES: list[dict[str, Any]] = [
    {"name": "default", "prefix": ""},
    {
        "name": "calls",
        "prefix": "calls/",
        "sis": {"property": "chinese_8k_general", "channel": "LEFT_AGENT", "diarization": True},
    },
    {
        "name": "dashscope",
        "prefix": "dashscope/",
        "provider": "dashscope",
        "dashscope": {"model": "paraformer-v2"},
    },
]

_CONTENT_TYPES = {".wav": "audio/wav", ".mp3": "audio/mpeg", ".ogg": "audio/ogg", ".mp4": "video/mp4"}


def _stack_options(args: argparse.Namespace, log_file: Path | None) -> LocalStackOptions:
    return LocalStackOptions(
        instant=getattr(args, "instant", False),
        profiles_json=json.dumps(LOCAL_PROFILES),
        log_file=log_file,
        moto_port=getattr(args, "port", 0) or 0,
    )


def up(args: argparse.Namespace) -> int:
    out = sys.stdout
    out.write("Starting the local stack (moto S3/SQS/DynamoDB, SIS emulator, callback endpoint)...\n")
    with LocalStack(_stack_options(args, log_file=None)) as stack:
        names = stack.options.names
        out.write(
            "\nbucketscribe is up. Upload recordings under the input prefix and transcripts appear "
            "under the output prefix.\n"
            f"  S3 endpoint      {stack.endpoint_url}\n"
            f"  credentials      AWS_ACCESS_KEY_ID=local-access-key AWS_SECRET_ACCESS_KEY=local-secret-key "
            "AWS_DEFAULT_REGION=us-east-1\n"
            f"  bucket           {names.bucket}\n"
            f"  input prefix     {names.input_prefix}   (calls/ below it: stereo agent/customer profile)\n"
            f"  output prefix    {stack.options.output_prefix}\n"
            f"  job status       curl -H 'Authorization: Bearer {stack.status_token}' "
            f"{stack.callback_url}/jobs/JOB_ID\n\n"
            "Example:\n"
            f"  aws --endpoint-url {stack.endpoint_url} s3 cp call.wav "
            f"s3://{names.bucket}/{names.input_prefix}call.wav\n"
            f"  aws --endpoint-url {stack.endpoint_url} s3 ls --recursive "
            f"s3://{names.bucket}/{stack.options.output_prefix}\n\n"
            "Function logs (JSON, one line each) follow. Ctrl-C stops.\n"
        )
        out.flush()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            out.write("\nStopping.\n")
    return 0


class ProgressBoard:
    """One line per file: uploaded → queued → transcribing → done/failed, redrawn in place on a TTY."""

    STEPS: ClassVar[dict[str, int]] = {"uploaded": 1, "queued": 2, "transcribing": 3, "done": 4, "failed": 4}

    def __init__(self, names: list[str], out: TextIO) -> None:
        self._names = names
        self._out = out
        self._tty = out.isatty()
        self._states: dict[str, str] = dict.fromkeys(names, "uploaded")
        self._started = time.monotonic()
        self._drawn = False
        self._width = max(len(n) for n in names)
        self._announce()

    def _announce(self) -> None:
        """Every file's first state, so each one shows up before anything happens to it."""
        if self._tty:
            self._redraw()
        else:
            for name in self._names:
                self._out.write(f"  {self._elapsed()}  {name:<{self._width}}  {self._states[name]}\n")
        self._out.flush()

    def update(self, states: dict[str, str]) -> None:
        changed = {n: s for n, s in states.items() if self._states.get(n) != s}
        self._states.update(states)
        if self._tty:
            self._redraw()
        else:
            for name, state in changed.items():
                self._out.write(f"  {self._elapsed()}  {name:<{self._width}}  {state}\n")
        self._out.flush()

    def _elapsed(self) -> str:
        return f"{time.monotonic() - self._started:6.1f}s"

    def _redraw(self) -> None:
        if self._drawn:
            self._out.write(f"\x1b[{len(self._names)}F")
        for name in self._names:
            state = self._states[name]
            filled = self.STEPS[state]
            bar = "#" * (filled * 5) + "." * ((4 - filled) * 5)
            self._out.write(f"\x1b[2K  [{bar}] {name:<{self._width}}  {state}  {self._elapsed()}\n")
        self._drawn = True


def _state_word(job: Job | None) -> str:
    if job is None:
        return "uploaded"
    return {
        JobState.ACCEPTED: "queued",
        JobState.SUBMITTING: "queued",
        JobState.SUBMITTED: "transcribing",
        JobState.DONE: "done",
        JobState.FAILED: "failed",
    }[job.state]


def run_transcription(
    files: list[tuple[Path, str]], *, out_dir: Path, timeout_s: float, instant: bool, stream: TextIO
) -> tuple[int, dict[Path, Job | None]]:
    """Upload each (file, profile prefix) to a fresh local stack, wait, download the outputs.

    Returns (exit code, job per file).
    """
    usable: list[tuple[Path, str]] = []
    problems = 0
    for path, prefix in files:
        if not path.is_file():
            stream.write(f"bucketscribe: error: {path}: no such file\n")
            problems += 1
        elif kind_by_extension(path.name) is None:
            stream.write(f"bucketscribe: error: {path}: not an audio or video file (by its extension)\n")
            problems += 1
        else:
            usable.append((path, prefix))
    if not usable:
        return 2, {}
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = out_dir / "bucketscribe-local.log"
    stream.write(f"Starting the local stack (function logs: {log_file})...\n")
    stream.flush()
    options = LocalStackOptions(instant=instant, profiles_json=json.dumps(LOCAL_PROFILES), log_file=log_file)
    with LocalStack(options) as stack:
        keys = _unique_keys(usable, stack.options.names.input_prefix)
        refs: dict[Path, ObjectRef] = {}
        for (path, _), key in zip(usable, keys, strict=True):
            refs[path] = stack.upload(
                path.read_bytes(),
                key,
                content_type=_CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream"),
            )
        labels = {ref.key: path.name for path, ref in refs.items()}
        board = ProgressBoard([labels[ref.key] for ref in refs.values()], stream)
        jobs: dict[str, Job] = {}
        for jobs in stack.watch(list(refs.values()), timeout_s=timeout_s):
            board.update({labels[ref.key]: _state_word(jobs.get(ref.key)) for ref in refs.values()})
        results: dict[Path, Job | None] = {path: jobs.get(ref.key) for path, ref in refs.items()}
        failures = _download(stack, results, out_dir, stream)
    code = 1 if failures or problems else 0
    return code, results


def _unique_keys(files: list[tuple[Path, str]], input_prefix: str) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for path, prefix in files:
        key = f"{input_prefix}{prefix}{path.name}"
        count = seen.get(key, 0)
        seen[key] = count + 1
        if count:
            key = f"{input_prefix}{prefix}{path.stem}-{count + 1}{path.suffix}"
        keys.append(key)
    return keys


def _download(stack: LocalStack, results: dict[Path, Job | None], out_dir: Path, stream: TextIO) -> int:
    failures = 0
    layout = stack.layout
    for path, job in results.items():
        if job is None or not job.state.is_final:
            stream.write(f"  {path.name}: not finished in time (see the log)\n")
            failures += 1
            continue
        keys = (
            job.outputs if job.state is JobState.DONE else [layout.output_key(job.source.key, "error.json")]
        )
        for key in keys:
            target = out_dir / key[len(layout.output_prefix) :]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(stack.read_output(key))
        if job.state is JobState.FAILED:
            failures += 1
            reason = job.error.message if job.error else "unknown reason"
            stream.write(f"  {path.name}: failed: {reason}\n")
    return failures


def transcribe(args: argparse.Namespace) -> int:
    prefix = ""
    if args.profile:
        match = [p for p in LOCAL_PROFILES if p["name"] == args.profile]
        if not match:
            known = ", ".join(str(p["name"]) for p in LOCAL_PROFILES)
            sys.stderr.write(f"bucketscribe: error: unknown profile {args.profile!r} (known: {known})\n")
            return 2
        prefix = str(match[0]["prefix"])
    code, results = run_transcription(
        [(path, prefix) for path in args.files],
        out_dir=args.out,
        timeout_s=args.timeout,
        instant=args.instant,
        stream=sys.stdout,
    )
    done = [job for job in results.values() if job and job.state is JobState.DONE]
    if done:
        sys.stdout.write(f"\nTranscripts are in {args.out}/ (json, txt, srt, vtt per file).\n")
    return code


def demo(args: argparse.Namespace) -> int:
    from bucketscribe.samples import bundled_samples

    samples = bundled_samples()
    out = sys.stdout
    out.write(f"Transcribing {len(samples)} bundled samples with the offline Whisper engine...\n")
    # Stereo calls go under calls/, where the per-channel agent/customer profile applies.
    files = [(s.path, "calls/" if s.channel_texts else "") for s in samples]
    code, results = run_transcription(
        files, out_dir=args.out, timeout_s=args.timeout, instant=False, stream=out
    )
    out.write("\n")
    for sample in samples:
        job = results.get(sample.path)
        out.write(f"=== {sample.name}\n")
        if job is None or job.state is not JobState.DONE:
            out.write(f"  (no transcript: {job.error.message if job and job.error else 'not finished'})\n\n")
            continue
        txt_key = next(k for k in job.outputs if k.endswith(".txt"))
        text = (args.out / txt_key.split("/", 1)[1]).read_text(encoding="utf-8").strip()
        out.write(f"{text}\n  script: {sample.text}\n  word error rate: {_wer(sample.text, text):.2f}\n\n")
    out.write(f"All outputs are in {args.out}/\n")
    return code


def _wer(reference: str, hypothesis: str) -> float:
    from bucketscribe.local.scoring import word_error_rate

    # Speaker labels ("Agent: ") are part of the text file, not of the speech.
    spoken = " ".join(line.split(": ", 1)[-1] for line in hypothesis.splitlines())
    return word_error_rate(reference, spoken)

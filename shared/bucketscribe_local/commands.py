"""``bucketscribe up | transcribe | demo``: the local stack as a user drives it.

Streams: progress and messages go to stderr, results to stdout (a single file's transcript, the
demo's transcripts, ``--json`` events, ``up --json``'s one line), so ``> file`` keeps the result.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bucketscribe.cli.exit_codes import ExitCode, ReportedInterrupt
from bucketscribe.cli.interrupts import exit_at_once
from bucketscribe.cli.local_stacks import LocalStackFile, announce, withdraw
from bucketscribe.cli.progress import (
    BatchProgress,
    BoardReporter,
    EmulatorActivity,
    FileProgress,
    JsonReporter,
    LineReporter,
    ProviderFile,
    QuietReporter,
    Reporter,
    Stage,
    clock_text,
    provider_file_for,
    stage_of,
)
from bucketscribe.clouds.registry import cloud
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.profile import Profile, ProfileSet
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.providers.registry import load_profiles
from bucketscribe_local.inputs import LocalInput, check_inputs
from bucketscribe_local.stack import LocalStack, LocalStackOptions, PortUnavailable, options_from_environment

# Stereo calls get per-channel (agent/customer) recognition on SIS, dashscope/ goes to
# DashScope Paraformer, live/ is streamed by the submit function over DashScope's real-time API
# (gummy, translated into English), everything else the default (SIS). BUCKETSCRIBE_PROFILES
# replaces these.
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
    {
        "name": "live",
        "prefix": "live/",
        "provider": "dashscope-realtime",
        "realtime": {"translate": "en", "longer_uploads": "batch"},
    },
]
DEFAULT_OUT = Path("transcripts")
POLL_S = 0.5
# The file `up` uses in the example it prints: bundled, so the example works as printed.
EXAMPLE_SAMPLE = "hello_en.wav"
# `up` batches uploads as the deployed submit function does (the stack's default). `transcribe` and
# `demo` upload every file before they wait for any, so a batching window would only add its
# seconds to each run: their uploads go to the submit function as soon as they are queued.
ONE_SHOT_BATCHING_WINDOW_S = 0.0


class UsageProblem(Exception):
    """Bad usage found before any work (exit 2); the message is the whole explanation."""


def _say(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def _stack_options(args: argparse.Namespace, **fields: Any) -> LocalStackOptions:
    """The stack's options: the command's own, then the user's BUCKETSCRIBE_* settings."""
    try:
        return options_from_environment(
            instant=getattr(args, "instant", False),
            engine_language=getattr(args, "language", None),
            engine_translate=getattr(args, "task", "transcribe") == "translate",
            engine_model=getattr(args, "model", None),
            profiles_json=json.dumps(LOCAL_PROFILES),
            cloud=getattr(args, "cloud", "aws"),
            **fields,
        )
    except ValueError as error:
        raise UsageProblem(str(error)) from None


def _profile_set(options: LocalStackOptions) -> ProfileSet:
    raw = json.loads(options.profiles_json or json.dumps(LOCAL_PROFILES))
    return load_profiles(raw)


def _start(stack: LocalStack) -> None:
    try:
        stack.start()
    except PortUnavailable as error:
        stack.stop()
        raise UsageProblem(f"{error}; choose another with --port N (0 picks a free one)") from None


# ----- up ----------------------------------------------------------------------------------------


def up(args: argparse.Namespace) -> int:
    try:
        options = _stack_options(
            args, moto_port=args.port, state_dir=args.state_dir, logs_to_stderr=args.json
        )
    except UsageProblem as problem:
        return _usage(str(problem))
    if not args.json:
        _say(
            "Starting the local stack (moto S3/SQS/DynamoDB, SIS and DashScope emulators, "
            "callback endpoint)..."
        )
    stack = LocalStack(options)
    try:
        _start(stack)
    except UsageProblem as problem:
        return _usage(str(problem))
    details = up_details(stack)
    announced: Path | None = None
    try:  # from here on, Ctrl-C is the way to stop: it must land in this handler, however early
        # The operator's commands (status, jobs, redrive, usage) find this stack by this file.
        announced = announce(_stack_file(stack, details))
        sys.stdout.write(json.dumps(details) + "\n" if args.json else _up_text(stack, details))
        sys.stdout.flush()
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        # The first Ctrl-C stops cleanly (saving the state); a second one leaves at once (cli.py).
        _say("\nStopping (Ctrl-C again to leave without saving)..." if stack.state else "\nStopping.")
    if announced is not None:
        withdraw(announced)  # first: a command must not find a stack that is going away
    saved = stack.stop(leaving_process=True)
    if saved is not None:
        _say(f"Saved {saved.objects} objects and {saved.jobs} job records to {options.state_dir}/.")
    # Everything is saved and said: tearing the interpreter down (moto, boto3, the emulators'
    # modules) would take another one to two seconds of the user's time for nothing.
    exit_at_once(ExitCode.OK)


def _stack_file(stack: LocalStack, details: dict[str, Any]) -> LocalStackFile:
    return LocalStackFile(
        pid=os.getpid(),
        cloud=stack.options.cloud,
        endpoint_url=stack.endpoint_url,
        region=details["region"],
        access_key_id=details["access_key_id"],
        secret_access_key=details["secret_access_key"],
        jobs_table=details["jobs_table"],
        bucket=details["bucket"],
        status_api_url=stack.callback_url,
        status_token=stack.status_token,
        emulator_urls=[stack.sis.url, stack.dashscope.url],
    )


def cli_command() -> str:
    """How a shell runs this CLI: ``bucketscribe`` where that name is this installation on PATH,
    else the script's path (``make demo`` leaves it in .venv/bin without putting it on PATH)."""
    script = Path(sys.executable).parent / "bucketscribe"
    on_path = shutil.which("bucketscribe")
    if on_path and script.exists() and Path(on_path).resolve() == script.resolve():
        return "bucketscribe"
    return shlex.quote(str(script)) if script.exists() else "bucketscribe"


def up_details(stack: LocalStack) -> dict[str, Any]:
    """Everything a script needs to drive the running stack, and an example that works as printed."""
    from bucketscribe_local.aws_resources import LOCAL_ACCESS_KEY, LOCAL_REGION, LOCAL_SECRET_KEY
    from bucketscribe_local.samples import sample

    names, layout = stack.options.names, stack.layout
    example = sample(EXAMPLE_SAMPLE).path
    key = f"{names.input_prefix}{example.name}"
    # A single PUT's ETag is the MD5 of the body, so the job id is known before the upload.
    etag = hashlib.md5(example.read_bytes(), usedforsecurity=False).hexdigest()
    job_id = ObjectRef(bucket=names.bucket, key=key, etag=etag).job_id()
    object_url = f"{stack.endpoint_url}/{names.bucket}/{urllib.parse.quote(key)}"
    transcript_url = (
        f"{stack.endpoint_url}/{names.bucket}/{urllib.parse.quote(layout.output_key(key, 'txt'))}"
    )
    auth = f"Authorization: Bearer {stack.status_token}"
    by_key = f"{stack.callback_url}/jobs?" + urllib.parse.urlencode({"bucket": names.bucket, "key": key})
    # curl signs S3 requests itself (SigV4), so nothing but curl is needed.
    signed = f"--aws-sigv4 aws:amz:{LOCAL_REGION}:s3 --user {LOCAL_ACCESS_KEY}:{LOCAL_SECRET_KEY}"
    return {
        "s3_endpoint": stack.endpoint_url,
        "region": LOCAL_REGION,
        "access_key_id": LOCAL_ACCESS_KEY,
        "secret_access_key": LOCAL_SECRET_KEY,
        "bucket": names.bucket,
        "input_prefix": names.input_prefix,
        "output_prefix": stack.options.output_prefix,
        "profiles": [
            {"name": p.name, "prefix": p.prefix, "provider": p.provider}
            for p in _profile_set(stack.options).profiles
        ],
        "jobs_table": names.jobs_table,
        # Huawei Cloud's shape has no queue: the OBS trigger invokes the submit function directly.
        "queue_url": stack.resources.queue_url if stack.resources and stack.huawei is None else None,
        "cloud": stack.options.cloud,
        "status_api": f"{stack.callback_url}/jobs/{{job_id}}",
        "status_token": stack.status_token,
        "callback_base_url": stack.callback_url,
        "webhook_url": stack.options.webhook_url,
        "sis_endpoint": stack.sis.url,
        "dashscope_endpoint": stack.dashscope.http_api_url,
        # The emulators' credentials, so any SDK client (a user's script, a benchmark's baseline)
        # can drive them beside the functions: huaweicloudsdksis signs with the AK/SK and needs the
        # project id; dashscope takes the key as a bearer token.
        "sis_ak": stack.sis.ak,
        "sis_sk": stack.sis.sk,
        "sis_project_id": stack.sis.project_id,
        "dashscope_api_key": stack.dashscope_api_key,
        "state_dir": str(stack.options.state_dir) if stack.options.state_dir else None,
        "restored": stack.restored.model_dump() if stack.restored else None,
        "example": {
            "file": str(example),
            "key": key,
            "job_id": job_id,
            "upload": f"curl -sS {signed} -T {shlex.quote(str(example))} {shlex.quote(object_url)}",
            "status": f"curl -sS -H {shlex.quote(auth)} {stack.callback_url}/jobs/{job_id}",
            "status_by_key": f"curl -sS -H {shlex.quote(auth)} {shlex.quote(by_key)}",
            "transcript": f"curl -sS {signed} {shlex.quote(transcript_url)}",
            # Waits until the transcript is written (exit 0) or the job failed (exit 1).
            "wait": f"{cli_command()} status --wait "
            + shlex.quote(f"{cloud(stack.options.cloud).uri_scheme}://{names.bucket}/{key}"),
        },
        "status_by_key_api": f"{stack.callback_url}/jobs?bucket={{bucket}}&key={{key}}",
    }


def _up_text(stack: LocalStack, details: dict[str, Any]) -> str:
    example = details["example"]
    profiles = ", ".join(f"{p['prefix'] or '(anything else)'} → {p['name']}" for p in details["profiles"])
    if stack.state is None:
        kept = (
            "Nothing is kept: the bucket and the job records are gone when up stops "
            "(--state-dir DIR keeps them)."
        )
    else:
        restored = stack.restored
        kept = f"State is kept in {stack.state.folder}/ when up stops (Ctrl-C)."
        if restored and restored.objects:
            kept += f" Restored {restored.objects} objects and {restored.jobs} job records"
            kept += f"; {restored.rerun} unfinished uploads run again." if restored.rerun else "."
    bucket, prefix = details["bucket"], details["input_prefix"]
    cli = cli_command()
    scheme = cloud(details["cloud"]).uri_scheme
    if details["cloud"] == "huawei":
        storage = (
            f"  OBS endpoint     {details['s3_endpoint']}   "
            f"(path-style, signature v4, region {details['region']})\n"
            f"  credentials      OBS_ACCESS_KEY_ID={details['access_key_id']} "
            f"OBS_SECRET_ACCESS_KEY={details['secret_access_key']}\n"
        )
        upload = _obs_python(
            details, f"putFile({_text(bucket)}, {_text(example['key'])}, {_text(example['file'])}).status"
        )
        transcript_key = stack.layout.output_key(example["key"], "txt")
        transcript = _obs_python(
            details,
            f"getObject({_text(bucket)}, {_text(transcript_key)}, loadStreamInMemory=True)"
            ".body.buffer.decode()",
        )
        any_client = "any OBS or S3 client: path-style, signature v4"
    else:
        storage = (
            f"  S3 endpoint      {details['s3_endpoint']}\n"
            f"  credentials      AWS_ACCESS_KEY_ID={details['access_key_id']} "
            f"AWS_SECRET_ACCESS_KEY={details['secret_access_key']} AWS_DEFAULT_REGION={details['region']}\n"
        )
        upload, transcript = example["upload"], example["transcript"]
        any_client = "any S3 client"
    return (
        "\nbucketscribe is up. Recordings uploaded under the input prefix become transcripts under the "
        "output prefix.\n"
        f"{storage}"
        f"  bucket           {bucket}\n"
        f"  input prefix     {prefix}   (profiles by prefix below it: {profiles})\n"
        f"  output prefix    {details['output_prefix']}\n"
        f"  functions        as on {_FUNCTIONS_AS_ON[details['cloud']]}\n"
        f"  job status       GET {details['status_api']} or {details['status_by_key_api']}\n"
        f"                   with 'Authorization: Bearer {details['status_token']}'\n"
        "  operator         `bucketscribe status`, `jobs`, `redrive` and `usage` find this stack by "
        "themselves\n"
        f"  {kept}\n\n"
        "Try it (works as printed, also pasted as one block: the second line waits for the transcript):\n"
        f"  {upload}\n"
        f"  {example['wait']}\n"
        f"  {transcript}\n\n"
        f"Your own files: upload them the same way (or with {any_client}, and the credentials above),\n"
        "and ask where one stands by its key (the latest upload under that key; --wait waits for it):\n"
        f"  {cli} status {scheme}://{bucket}/{prefix}<name>\n"
        f"  {example['status_by_key']}\n"
        f"or follow every job as it moves: {cli} jobs --watch\n"
        "(`up --json` prints all of this as one JSON line.)\n\n"
        "Function logs (JSON, one line each) follow on stderr. Ctrl-C stops.\n"
    )


def _obs_python(details: dict[str, Any], call: str) -> str:
    """A shell line that makes one call through Huawei's own OBS SDK (esdk-obs-python) on the stack
    and prints what it returns. ``call`` names its texts with ``_text`` (double-quoted literals)."""
    client = (
        f"ObsClient(access_key_id={_text(details['access_key_id'])}, "
        f"secret_access_key={_text(details['secret_access_key'])}, server={_text(details['s3_endpoint'])}, "
        f'signature="v4", region={_text(details["region"])}, path_style=True, is_signature_negotiation=False)'
    )
    code = f"from obs import ObsClient; print({client}.{call})"
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _text(value: str) -> str:
    """A Python string literal in double quotes, so the shell line quotes it in single ones."""
    return json.dumps(value)


_FUNCTIONS_AS_ON = {
    "aws": "AWS Lambda (S3 -> SQS events, API Gateway events)",
    "huawei": "FunctionGraph (OBS SDK, OBS trigger events without a queue, API Gateway events)",
}


def _usage(message: str) -> int:
    _say(f"bucketscribe: error: {message}")
    return ExitCode.USAGE


# ----- transcribe / demo -------------------------------------------------------------------------


@dataclass
class RunSettings:
    out_dir: Path
    timeout_s: float
    formats: list[str] | None
    """Output formats to write (json, txt, srt, vtt); None: every file the pipeline wrote."""
    reporter: Reporter
    chatty: bool
    """Human messages on stderr (off for --quiet and --json)."""
    keep_text: bool = False
    """Keep each transcript's text (to print it), read from the bucket whatever the formats."""


@dataclass
class FileResult:
    input: LocalInput
    upload: ObjectRef
    progress: FileProgress
    output_stem: Path
    """Where the outputs go, less the format's suffix: ``OUT/calls/call.wav`` (+ ``.txt``, ...)."""
    job: Job | None = None
    text: str | None = None


@dataclass
class TranscriptionRun:
    results: list[FileResult] = field(default_factory=list)
    batch: BatchProgress | None = None

    @property
    def exit_code(self) -> int:
        return (
            ExitCode.OK if all(r.progress.stage is Stage.DONE for r in self.results) else ExitCode.SOME_FAILED
        )


def checked_inputs(
    files: list[tuple[Path, Profile]], *, doing: str, json_events: bool = False
) -> list[LocalInput] | None:
    """The files, checked; None after one line per refused file (and a JSON event each with --json)."""
    usable, refused = check_inputs(files)
    for refusal in refused:
        _say(f"bucketscribe: error: {refusal.path}: {refusal.reason}")
        if json_events:
            JsonReporter(sys.stdout).emit(
                {"event": "refused", "path": str(refusal.path), "reason": refusal.reason}
            )
    if refused:
        _say(f"bucketscribe: nothing was {doing}; leave out or fix the files above.")
        return None
    return usable


def run_transcription(
    inputs: list[LocalInput], stack_options: LocalStackOptions, settings: RunSettings
) -> TranscriptionRun:
    """Upload every file to a fresh local stack, follow each one to the end, fetch its outputs.

    On Ctrl-C: says what finished and where, then lets the interrupt through (nothing is stopped
    cleanly: cli.py leaves at once).
    """
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    if settings.chatty:
        _say(f"Starting the local stack (function logs: {stack_options.log_file})...")
    stack = LocalStack(stack_options)
    run = TranscriptionRun()
    _start(stack)
    try:
        _upload_all(stack, inputs, run, settings.out_dir)
        _follow(stack, run, settings)
    except KeyboardInterrupt:
        _report_interrupt(run, settings)
        raise ReportedInterrupt from None
    stack.stop()
    return run


def _upload_all(stack: LocalStack, inputs: list[LocalInput], run: TranscriptionRun, out_dir: Path) -> None:
    keys = _unique_keys(inputs, stack.options.names.input_prefix)
    for item, key in zip(inputs, keys, strict=True):
        ref = stack.upload(item.path.read_bytes(), key, content_type=item.content_type)
        progress = FileProgress(label=item.label, path=item.path, audio_ms=item.duration_ms)
        stem = out_dir / stack.layout.relative(key)
        run.results.append(FileResult(input=item, upload=ref, progress=progress, output_stem=stem))


def _follow(stack: LocalStack, run: TranscriptionRun, settings: RunSettings) -> None:
    """Poll every unfinished file until all are final or ``--timeout`` runs out."""
    batch = BatchProgress([r.progress for r in run.results])
    run.batch = batch
    reporter = settings.reporter
    for result in run.results:
        reporter.changed(batch, result.progress)
    activity = EmulatorActivity([stack.sis.url, stack.dashscope.url])
    deadline = time.monotonic() + settings.timeout_s
    while True:
        pending = [r for r in run.results if not r.progress.stage.is_final]
        for result in pending:
            result.job = stack.job(result.upload.job_id())
        # Only ask the services while they hold one of ours.
        at_service = any(r.job is not None and r.job.provider_task_id for r in pending)
        service_files = activity.provider_files() if at_service else []
        for result in pending:
            if _advance(stack, result, service_files, settings):
                reporter.changed(batch, result.progress)
        reporter.tick(batch)
        if batch.finished:
            return
        if time.monotonic() > deadline:
            for result in run.results:
                if not result.progress.stage.is_final:
                    _time_out(result, settings.timeout_s)
                    reporter.changed(batch, result.progress)
            return
        time.sleep(POLL_S)


def _advance(
    stack: LocalStack, result: FileResult, service_files: list[ProviderFile], settings: RunSettings
) -> bool:
    """Bring one file's progress up to date from its job and the service; True if it changed."""
    job, progress = result.job, result.progress
    service = provider_file_for(job, service_files) if job is not None else None
    stage = stage_of(job, service)
    done_ms = service.audio_ms_done if service is not None and stage is Stage.TRANSCRIBING else None
    if progress.audio_ms is None and service is not None:
        progress.audio_ms = service.audio_ms_total
    if (stage, done_ms) == (progress.stage, progress.audio_ms_done):
        return False
    if stage.is_final and job is not None:
        _collect(stack, result, job, settings)
    progress.stage, progress.audio_ms_done = stage, done_ms
    return True


def _time_out(result: FileResult, timeout_s: float) -> None:
    progress = result.progress
    progress.error_code = "TIMEOUT"
    progress.error = (
        f"still {progress.stage.value} after --timeout {timeout_s:g} s (the log file has the details)"
    )
    progress.stage = Stage.TIMED_OUT


def _collect(stack: LocalStack, result: FileResult, job: Job, settings: RunSettings) -> None:
    """Copy a finished job's outputs (or its error report) out of the bucket."""
    from botocore.exceptions import ClientError

    layout = stack.layout
    progress = result.progress
    if job.state is JobState.DONE:
        wanted = (
            None
            if settings.formats is None
            else {layout.output_key(job.source.key, f) for f in settings.formats}
        )
        keys = [k for k in job.outputs if wanted is None or k in wanted]
        text_key = layout.output_key(job.source.key, "txt")
        if settings.keep_text and text_key in job.outputs:
            result.text = stack.read_output(text_key).decode("utf-8")
    else:
        keys = [layout.output_key(job.source.key, "error.json")]
        progress.error_code = job.error.code if job.error else "FAILED"
        progress.error = job.error.message if job.error else "no reason was recorded"
    for key in keys:
        target = settings.out_dir / key[len(layout.output_prefix) :]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_bytes(stack.read_output(key))
        except ClientError:
            continue  # an error report still being written: the job record has the reason
        progress.outputs.append(target)


def _unique_keys(inputs: list[LocalInput], input_prefix: str) -> list[str]:
    seen: dict[str, int] = {}
    keys = []
    for item in inputs:
        key = f"{input_prefix}{item.profile.prefix}{item.path.name}"
        count = seen.get(key, 0) + 1
        seen[key] = count
        if count > 1:
            key = f"{input_prefix}{item.profile.prefix}{item.path.stem}-{count}{item.path.suffix}"
        keys.append(key)
    return keys


def output_folders(run: TranscriptionRun) -> dict[Path, list[str]]:
    """Each folder that received outputs, with the files whose outputs are there."""
    folders: dict[Path, list[str]] = {}
    for result in run.results:
        for folder in dict.fromkeys(p.parent for p in result.progress.outputs):
            folders.setdefault(folder, []).append(result.progress.label)
    return folders


def _where_lines(run: TranscriptionRun, what: str) -> list[str]:
    """``<what> are in OUT/ and OUT/calls/:`` and then each file with the name its outputs have."""
    finished = [r for r in run.results if r.progress.stage is Stage.DONE and r.progress.outputs]
    if not finished:
        return []
    folders = " and ".join(f"{folder}/" for folder in dict.fromkeys(r.output_stem.parent for r in finished))
    width = max(len(r.progress.label) for r in finished)
    return [
        f"{what} are in {folders}:",
        *(f"  {r.progress.label:<{width}}  →  {r.output_stem}.*" for r in finished),
    ]


def _report_interrupt(run: TranscriptionRun, settings: RunSettings) -> None:
    done = [r for r in run.results if r.progress.stage is Stage.DONE]
    open_ = [r for r in run.results if not r.progress.stage.is_final]
    if isinstance(settings.reporter, JsonReporter):
        settings.reporter.emit(
            {
                "event": "interrupted",
                "done": [r.progress.label for r in done],
                "unfinished": [r.progress.label for r in open_],
                "outputs": {str(f): labels for f, labels in output_folders(run).items()},
            }
        )
        return
    elapsed = clock_text(run.batch.elapsed_s) if run.batch else "0:00"
    lines = [f"\nInterrupted after {elapsed}: {len(done)} of {len(run.results)} files done."]
    if done:
        lines += _where_lines(run, "Their outputs")
    if open_:
        lines.append(
            "Not finished: " + ", ".join(f"{r.progress.label} ({r.progress.stage.value})" for r in open_)
        )
    _say("\n".join(lines))


def _report_end(run: TranscriptionRun, settings: RunSettings) -> None:
    for result in run.results:
        progress = result.progress
        if progress.stage is not Stage.DONE:
            _say(f"bucketscribe: failed: {progress.path}: {progress.error_code}: {progress.error}")
        elif result.job is not None:
            # Speech the transcript has no text for is said, never left for the reader to find.
            for warning in result.job.warnings:
                _say(f"bucketscribe: warning: {progress.path}: {warning.code}: {warning.message}")
    if isinstance(settings.reporter, JsonReporter):
        settings.reporter.emit(
            {
                "event": "summary",
                "exit_code": int(run.exit_code),
                "done": run.batch.done if run.batch else 0,
                "failed": run.batch.failed if run.batch else 0,
                "total": len(run.results),
                "elapsed_s": round(run.batch.elapsed_s, 2) if run.batch else 0,
                "files": [
                    {
                        "file": r.progress.label,
                        "path": str(r.progress.path),
                        "state": r.progress.stage.value,
                        "job_id": r.job.id if r.job else None,
                        "coverage": r.job.coverage.model_dump() if r.job and r.job.coverage else None,
                        "warnings": [w.model_dump() for w in r.job.warnings] if r.job else [],
                        "outputs": [str(p) for p in r.progress.outputs],
                        "error_code": r.progress.error_code,
                        "error": r.progress.error,
                    }
                    for r in run.results
                ],
            }
        )
        return
    if not settings.chatty:
        return
    batch = run.batch
    done = batch.done if batch else 0
    summary = f"\n{done} of {len(run.results)} files done"
    summary += f", {batch.failed} failed" if batch and batch.failed else ""
    summary += f" in {clock_text(batch.elapsed_s)}." if batch else "."
    lines = [summary]
    formats = ", ".join(settings.formats) if settings.formats else "json, txt, srt, vtt, raw provider result"
    lines += _where_lines(run, f"Outputs ({formats})")
    _say("\n".join(lines))


def _reporter(args: argparse.Namespace) -> Reporter:
    if args.json:
        return JsonReporter(sys.stdout)
    if args.quiet:
        return QuietReporter()
    return BoardReporter(sys.stderr) if sys.stderr.isatty() else LineReporter(sys.stderr)


def transcribe(args: argparse.Namespace) -> int:
    dashes = sum(str(path) == "-" for path in args.files)
    if dashes > 1:
        return _usage("- (standard input) can be named once")
    if dashes and sys.stdin.isatty():
        return _usage(
            "- reads a recording from standard input, which is a terminal: pipe one in "
            "(cat call.wav | bucketscribe transcribe -)"
        )
    _apply_engine_options(args)
    with tempfile.TemporaryDirectory(prefix="bucketscribe-stdin-") as folder:
        files = [_stdin_recording(Path(folder)) if str(path) == "-" else path for path in args.files]
        return _transcribe(args, files)


# The offline engine's options and the BUCKETSCRIBE_WHISPER_* setting each one sets.
ENGINE_OPTIONS = {
    "device": "DEVICE",
    "compute_type": "COMPUTE_TYPE",
    "beam_size": "BEAM_SIZE",
    "threads": "CPU_THREADS",
}


def _apply_engine_options(args: argparse.Namespace) -> None:
    """The engine's options become its settings, read when it loads (in this process)."""
    for option, setting in ENGINE_OPTIONS.items():
        value = getattr(args, option, None)
        if value is not None:
            os.environ[f"BUCKETSCRIBE_WHISPER_{setting}"] = str(value)


# A file name for standard input, by what its first bytes are (the pipeline routes by extension).
_STDIN_EXTENSIONS = {
    "wav": ".wav",
    "ogg": ".ogg",
    "ogg-opus": ".opus",
    "ogg-speex": ".ogg",
    "flac": ".flac",
    "mp3": ".mp3",
    "mp4": ".m4a",
    "amr": ".amr",
    "matroska": ".mkv",
    "asf": ".wma",
    "flv": ".flv",
    "mpeg": ".mpg",
    "adts": ".aac",
    "avi": ".avi",
}


def _stdin_recording(folder: Path) -> Path:
    """Standard input, kept in ``folder`` as ``stdin.<ext>`` (what is not media is refused by the
    same checks as any file, naming it)."""
    from bucketscribe.domain.media_sniff import SNIFF_BYTES, sniff

    data = sys.stdin.buffer.read()
    sniffed = sniff(data[:SNIFF_BYTES], total_size=len(data))
    path = folder / f"stdin{_STDIN_EXTENSIONS.get(sniffed.container, '.bin') if sniffed else '.bin'}"
    path.write_bytes(data)
    return path


def _transcribe(args: argparse.Namespace, files: list[Path]) -> int:
    try:
        stack_options = _stack_options(args, batching_window_s=ONE_SHOT_BATCHING_WINDOW_S)
        profiles = _profile_set(stack_options)
        chosen = _chosen_profile(profiles, args.profile)
    except UsageProblem as problem:
        return _usage(str(problem))
    pairs = [(path, chosen or profiles.match(path.name)) for path in files]
    inputs = checked_inputs(pairs, doing="transcribed", json_events=args.json)
    if inputs is None:
        return ExitCode.USAGE
    out_dir: Path = args.out or DEFAULT_OUT
    # Like whisper: one file and no --out, and the transcript is printed too.
    print_text = len(inputs) == 1 and args.out is None and not args.json
    settings = RunSettings(
        out_dir=out_dir,
        timeout_s=args.timeout,
        formats=None if "all" in args.output_format else args.output_format,
        reporter=_reporter(args),
        chatty=not (args.quiet or args.json),
        keep_text=print_text,
    )
    stack_options = stack_options.model_copy(update={"log_file": out_dir / "bucketscribe-local.log"})
    try:
        run = run_transcription(inputs, stack_options, settings)
    except UsageProblem as problem:
        return _usage(str(problem))
    _report_end(run, settings)
    if print_text and run.results and run.results[0].text is not None:
        sys.stdout.write(run.results[0].text.rstrip("\n") + "\n")
        sys.stdout.flush()
    return run.exit_code


def _chosen_profile(profiles: ProfileSet, name: str | None) -> Profile | None:
    if name is None:
        return None
    chosen = profiles.find(name)
    if chosen is None:
        known = ", ".join(p.name for p in profiles.profiles)
        raise UsageProblem(f"unknown profile {name!r} (known: {known})")
    return chosen


def demo(args: argparse.Namespace) -> int:
    from bucketscribe_local.samples import bundled_samples

    samples = bundled_samples()
    out = sys.stdout
    _say(f"Transcribing {len(samples)} bundled samples with the offline Whisper engine...")
    stack_options = LocalStackOptions(
        profiles_json=json.dumps(LOCAL_PROFILES),
        log_file=args.out / "bucketscribe-local.log",
        batching_window_s=ONE_SHOT_BATCHING_WINDOW_S,
    )
    profiles = _profile_set(stack_options)
    calls = profiles.find("calls")
    default = profiles.match("")
    # Stereo calls go under calls/, where the per-channel agent/customer profile applies.
    checked = checked_inputs(
        [(s.path, calls if s.channel_texts and calls else default) for s in samples], doing="transcribed"
    )
    if checked is None:  # a damaged installation
        return ExitCode.USAGE
    # Progress names the samples, not their paths inside the installed package.
    inputs = [item.model_copy(update={"label": item.path.name}) for item in checked]
    settings = RunSettings(
        out_dir=args.out,
        timeout_s=args.timeout,
        formats=None,
        reporter=BoardReporter(sys.stderr) if sys.stderr.isatty() else LineReporter(sys.stderr),
        chatty=True,
        keep_text=True,
    )
    run = run_transcription(inputs, stack_options, settings)
    out.write("\n")
    by_path = {r.input.path: r for r in run.results}
    for sample in samples:
        result = by_path.get(sample.path)
        out.write(f"=== {sample.name}\n")
        if result is None or result.text is None:
            reason = result.progress.error if result else "not started"
            out.write(f"  (no transcript: {reason})\n\n")
            continue
        text = result.text.strip()
        out.write(f"{text}\n  script: {sample.text}\n  word error rate: {_wer(sample.text, text):.2f}\n\n")
    out.flush()
    _report_end(run, settings)
    return run.exit_code


def _wer(reference: str, hypothesis: str) -> float:
    from bucketscribe_local.scoring import word_error_rate

    # Speaker labels ("Agent: ") are part of the text file, not of the speech.
    spoken = " ".join(line.split(": ", 1)[-1] for line in hypothesis.splitlines())
    return word_error_rate(reference, spoken)

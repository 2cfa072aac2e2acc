"""The ``bucketscribe`` command: transcribe recordings on this machine, run the local stack, and
convert provider results.

Exit codes, the same for every sub-command:

- 0: everything asked for was done (also `up` stopped by Ctrl-C, its normal stop);
- 1: some files failed (each gets one line on stderr: file, code, reason), or what was asked
  could not be done (a job store that cannot be read);
- 2: bad usage or input, refused before any work started (one line per problem);
- 130: interrupted (Ctrl-C); what finished so far is listed, nothing half-written is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Sequence
from enum import IntEnum
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn, TypeVar, get_args

from pydantic import ValidationError

from bucketscribe.model import Transcript

Number = TypeVar("Number", int, float)


class ExitCode(IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


EXIT_BAD_INPUT = ExitCode.USAGE
# After Ctrl-C a command gets this long to say what it finished before the process leaves anyway
# (worker threads may be in the middle of a file and are not waited for).
INTERRUPT_GRACE_S = 0.8
OUTPUT_FORMATS = ("json", "txt", "srt", "vtt")
HELP_WIDTH = 88


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl-C after the command has said what it finished and where."""


class BadInput(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


# ----- the commands that need no local stack ----------------------------------------------------


def _read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(path, "no such file") from None
    except IsADirectoryError:
        raise BadInput(path, "is a directory, not a JSON file") from None
    except UnicodeDecodeError:
        raise BadInput(path, "is not UTF-8 text (is it a recording instead of a result?)") from None
    except OSError as exc:
        raise BadInput(path, exc.strerror or str(exc)) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BadInput(
            path, f"is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None


def _normalize(args: argparse.Namespace) -> int:
    from bucketscribe.providers.dashscope_result import transcript_from_dashscope
    from bucketscribe.providers.sis_result import transcript_from_sis

    data = _read_json(args.result)
    normalizers: dict[str, Callable[[Any], Transcript]] = {
        "sis": lambda d: transcript_from_sis(d, model=args.model, language=args.language),
        "dashscope": lambda d: transcript_from_dashscope(d, model=args.model, language=args.language),
    }
    try:
        transcript = normalizers[args.provider](data)
    except (ValidationError, ValueError) as exc:
        raise BadInput(args.result, str(exc).splitlines()[0]) from None
    sys.stdout.write(transcript.model_dump_json(indent=2) + "\n")
    return ExitCode.OK


def _render(args: argparse.Namespace) -> int:
    from bucketscribe.profiles import RenderOptions
    from bucketscribe.render import render

    data = _read_json(args.transcript)
    try:
        transcript = Transcript.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "document"
        raise BadInput(
            args.transcript, f"is not a bucketscribe transcript ({where}: {first['msg']})"
        ) from None
    options = RenderOptions(speaker_labels=not args.no_speakers)
    sys.stdout.write(render(transcript, args.format, options))
    return ExitCode.OK


def _job_id(args: argparse.Namespace) -> int:
    from bucketscribe.model import ObjectRef

    ref = ObjectRef(bucket=args.bucket, key=args.key, etag=args.etag, version_id=args.version_id)
    sys.stdout.write(ref.job_id() + "\n")
    return ExitCode.OK


def _job_admin(command: str) -> Callable[[argparse.Namespace], int]:
    """``jobs`` / ``status`` / ``redrive``: the job store named by the functions' own settings."""

    def run(args: argparse.Namespace) -> int:
        from bucketscribe import job_admin
        from bucketscribe.wiring import environment_settings, job_store

        try:
            settings = environment_settings()
        except ValidationError as exc:
            raise BadInput("settings", str(exc).splitlines()[-1].strip()) from None
        handler: Callable[..., int] = getattr(job_admin, command)
        try:
            return handler(args, job_store(settings), sys.stdout)
        except job_admin.AdminUsageError as exc:
            raise BadInput("usage", str(exc)) from None
        except Exception as exc:  # the store is unreachable or refuses us: say so in one line
            sys.stderr.write(
                f"bucketscribe: error: cannot read the job store {settings.jobs_table!r}: "
                f"{type(exc).__name__}: {exc}\n(set BUCKETSCRIBE_JOBS_TABLE, BUCKETSCRIBE_AWS_ENDPOINT_URL "
                "and AWS credentials as the functions have them; `bucketscribe up` prints them)\n"
            )
            return ExitCode.SOME_FAILED

    return run


def _local(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from bucketscribe.local import commands

        handler: Callable[[argparse.Namespace], int] = getattr(commands, command)
        return handler(args)

    return run


def _emulator_translation_targets() -> frozenset[str]:
    # Imported only when the emulator answers: its package takes a quarter of a second to load.
    from bucketscribe.local.dashscope_server.requests import SUPPORTED_TRANSLATION_TARGETS

    return SUPPORTED_TRANSLATION_TARGETS


def _stream(args: argparse.Namespace) -> int:
    from bucketscribe.local.commands import checked_inputs
    from bucketscribe.local.streaming import API_KEY_ENV, stream
    from bucketscribe.profiles import Profile, RealtimeOptions

    try:
        options = RealtimeOptions(
            model=args.model,
            source_language=args.source_language,
            translate=args.translate,
            channels=args.channels,
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        option = str(first["loc"][0]) if first["loc"] else "model"
        value = getattr(args, option, None)
        what = f"--{option.replace('_', '-')}" + (f" {value}" if value else "")
        return _refuse(args, what, str(first["msg"]).removeprefix("Value error, "))
    local = not os.environ.get(API_KEY_ENV)
    if local and args.translate and args.translate not in (targets := _emulator_translation_targets()):
        return _refuse(
            args,
            f"--translate {args.translate}",
            f"the local emulator (offline Whisper) translates only into {', '.join(sorted(targets))}; "
            f"set {API_KEY_ENV} to use the real service",
        )
    # Each file is checked for what the options need of it (a split needs no stereo: mono is streamed whole).
    profile = Profile(provider="dashscope-realtime", realtime=options.model_copy(update={"channels": "mix"}))
    inputs = checked_inputs([(path, profile) for path in args.files], doing="streamed", json_events=args.json)
    if inputs is None:
        return ExitCode.USAGE
    _interrupt.note = f"Interrupted: the files shown as done have their outputs in {args.out}/."
    return stream(args, inputs, options)


def _refuse(args: argparse.Namespace, what: str, problem: str) -> int:
    """Bad options, before any work: one line on stderr (and a JSON event with --json); exit 2."""
    sys.stderr.write(f"bucketscribe: error: {what}: {problem}\n")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps({"event": "refused", "what": what, "reason": problem}) + "\n")
    return ExitCode.USAGE


# ----- the parser ------------------------------------------------------------------------------


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and examples as written and shows every option's default.

    A flag says "(default: off)"; an option whose default is computed says so in its own help.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.nargs == 0:
            return f"{text} (default: off)"
        if action.default is None:
            return text
        return f"{text} (default: %(default)s)"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bucketscribe")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _checked(
    convert: Callable[[str], Number], kind: str, accept: Callable[[Number], bool], rule: str
) -> Callable[[str], Number]:
    """An argparse type: ``convert`` the text, then refuse values outside ``rule`` with the reason."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is not {rule}")
        return value

    return parse


positive_seconds = _checked(float, "a number of seconds", lambda v: v > 0, "a positive number of seconds")
positive_int = _checked(int, "a whole number", lambda v: v >= 1, "1 or more")
port_number = _checked(
    int, "a port number", lambda v: 0 <= v <= 65535, "a port number (0-65535; 0 picks a free one)"
)


def output_formats(text: str) -> list[str]:
    formats = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in formats if f not in (*OUTPUT_FORMATS, "all")]
    if unknown or not formats:
        choices = ", ".join((*OUTPUT_FORMATS, "all"))
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {choices} (comma-separated)")
    return formats


TRANSCRIBE_EPILOG = """\
examples:
  bucketscribe transcribe talk.mp3                    # prints the transcript; writes transcripts/talk.mp3.*
  bucketscribe transcribe a.wav b.mp4 --out subs/ --output-format srt,vtt
  bucketscribe transcribe call.wav --profile calls    # stereo: agent left, customer right
  bucketscribe transcribe *.wav --json | jq .         # one JSON event per line

Outputs go to OUT/<name>.json|.txt|.srt|.vtt (and the raw provider result); a profile with a
prefix (calls/, dashscope/) writes into that subfolder of OUT. Progress goes to stderr.
Every file is checked (exists, readable, audio or video by its content, channels the profile
needs) before anything starts; if one is refused nothing runs and the exit code is 2.
"""

UP_EPILOG = """\
examples:
  bucketscribe up                          # S3 endpoint on 127.0.0.1:4566, prints a working example
  bucketscribe up --port 0 --json          # a free port; one JSON line with every endpoint and token
  bucketscribe up --state-dir ~/.bucketscribe-state   # keep the bucket and job records between runs

Settings come from the environment as for the deployed functions: BUCKETSCRIBE_PROFILES,
BUCKETSCRIBE_INPUT_PREFIX / _OUTPUT_PREFIX, BUCKETSCRIBE_CALLBACK_SECRET, BUCKETSCRIBE_STATUS_API_TOKEN,
BUCKETSCRIBE_FIRST_CHECK_AFTER_S, ... Ctrl-C stops (and saves the state); a second Ctrl-C leaves at once.
"""

STREAM_EPILOG = """\
examples:
  bucketscribe stream a.wav b.mp3 --translate en --out subs/
  bucketscribe stream call.wav --channels split          # agent (left) and customer (right)
  bucketscribe stream talk.mp4 --pace realtime --json    # as a live source; one JSON event per line
  BUCKETSCRIBE_DASHSCOPE_API_KEY=sk-... bucketscribe stream talk.mp4   # the real service

Each file's sentences show as they are recognised (Transcript ==> / Translate ==>), then its
request id, first- and last-package delay and real-time factor; a summary table at the end.
Without BUCKETSCRIBE_DASHSCOPE_API_KEY a local DashScope emulator (offline Whisper) answers.
Exit codes: 0 all done, 1 some file failed, 2 refused before streaming, 130 interrupted.
"""


def whisper_language(text: str) -> str:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    code = text.strip().lower()
    if code not in _LANGUAGE_CODES:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a language Whisper knows (use a code such as en, zh, de)"
        )
    return code


def whisper_model_folder(text: str) -> Path:
    from bucketscribe.local.model_store import ModelStoreError, resolve_model

    try:
        return resolve_model(text)
    except ModelStoreError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _instant_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instant", action="store_true", help="skip the speech engine: a fixed text (for testing)"
    )


def _cloud_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cloud",
        choices=["aws", "huawei"],
        default="aws",
        help="run the functions as deployed on AWS (S3 -> SQS -> Lambda events) or on Huawei Cloud "
        "(OBS SDK, OBS trigger -> FunctionGraph events without a queue, API Gateway events)",
    )


NewCommand = Callable[..., argparse.ArgumentParser]
"""``command(name, summary, description, epilog)``: a sub-command's parser, formatted like all others."""


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="bucketscribe",
        description=textwrap.fill(
            "Transcribe recordings on this machine through the same pipeline that runs in the cloud, "
            "run that pipeline locally as a service, and convert provider results.",
            HELP_WIDTH,
        ),
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, summary: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, HELP_WIDTH),
            epilog=epilog,
            formatter_class=HelpFormatter,
        )

    _add_transcribe(command)
    _add_up(command)
    _add_stream(command)
    _add_demo(command)
    _add_normalize(command)
    _add_render(command)
    _add_job_id(command)
    _add_jobs(command)
    _add_status(command)
    _add_redrive(command)
    return parser


def _add_transcribe(command: NewCommand) -> None:
    transcribe = command(
        "transcribe",
        "transcribe local audio/video files (offline Whisper through the local stack)",
        "Upload each file to an embedded local stack (moto S3/SQS/DynamoDB, the speech-service emulators "
        "backed by the offline Whisper engine), follow it through the real functions and copy the "
        "transcripts out.",
        TRANSCRIBE_EPILOG,
    )
    transcribe.add_argument(
        "files", nargs="+", type=Path, metavar="FILE", help="audio or video files to transcribe"
    )
    transcribe.add_argument(
        "--profile",
        help="the profile to use for every file (default: by each file's prefix: the default profile)",
    )
    transcribe.add_argument(
        "--out",
        type=Path,
        help="folder for the outputs (default: ./transcripts; with one file and no --out the "
        "transcript is also printed)",
    )
    transcribe.add_argument(
        "--output-format",
        type=output_formats,
        default=["all"],
        metavar="FORMATS",
        help="which outputs to write: json, txt, srt, vtt (comma-separated) or all (default: all, "
        "which includes the raw provider result)",
    )
    transcribe.add_argument(
        "--timeout", type=positive_seconds, default=900.0, help="seconds to wait for all files"
    )
    transcribe.add_argument(
        "--quiet", action="store_true", help="no progress, only errors (and a single file's text)"
    )
    transcribe.add_argument(
        "--json", action="store_true", help="progress and the summary as JSON events on stdout, one per line"
    )
    transcribe.add_argument(
        "--language",
        type=whisper_language,
        help="the spoken language for the offline engine, e.g. en, zh, de (default: detected per file)",
    )
    transcribe.add_argument(
        "--model",
        type=whisper_model_folder,
        metavar="MODEL",
        help="the offline engine's Whisper model: a name (tiny, base, small, medium, large-v3, turbo, ...: "
        "base is bundled, another is taken from the Hugging Face cache or fetched) or a CTranslate2 "
        "model folder (default: the bundled base)",
    )
    _instant_flag(transcribe)
    _cloud_flag(transcribe)
    transcribe.set_defaults(run=_local("transcribe"), interrupt="prompt")


def _add_up(command: NewCommand) -> None:
    up = command(
        "up",
        "run the local stack until Ctrl-C (S3 endpoint, functions, emulators, status API)",
        "Run the whole pipeline on this machine: a moto S3/SQS/DynamoDB endpoint whose bucket notifies the "
        "real submit function, the SIS and DashScope emulators (offline Whisper), and the callback and "
        "status API. Uploads under the input prefix become transcripts under the output prefix.",
        UP_EPILOG,
    )
    up.add_argument(
        "--port", type=port_number, default=4566, help="S3/SQS/DynamoDB endpoint port (0: a free one)"
    )
    up.add_argument(
        "--state-dir",
        type=Path,
        help="keep the bucket and the job records in this folder between runs (default: nothing is kept)",
    )
    up.add_argument(
        "--json",
        action="store_true",
        help="print one JSON line with every endpoint, bucket, prefix and token; logs go to stderr",
    )
    _instant_flag(up)
    _cloud_flag(up)
    up.set_defaults(run=_local("up"), interrupt="graceful")


def _add_stream(command: NewCommand) -> None:
    from bucketscribe.profiles import RealtimeModel

    models = get_args(RealtimeModel)
    stream = command(
        "stream",
        "stream local files at once over DashScope real-time (gummy or Paraformer), optionally translated",
        "Decode each file to 16 kHz PCM and stream it over DashScope's real-time WebSocket API, showing "
        "each sentence as it is recognised and writing the transcript (and bilingual subtitles when "
        "translating) per file.",
        STREAM_EPILOG,
    )
    stream.add_argument("files", nargs="+", type=Path, metavar="FILE", help="audio or video files to stream")
    stream.add_argument(
        "--translate", metavar="LANG", help="also translate into LANG, e.g. en (gummy only; default: none)"
    )
    stream.add_argument("--source-language", default="auto", help="spoken language: auto, en, zh, ...")
    stream.add_argument(
        "--model",
        default=models[0],
        choices=models,
        metavar="MODEL",
        help=f"the real-time model: {', '.join(models)} (Paraformer does not translate)",
    )
    stream.add_argument(
        "--channels",
        choices=["mix", "split"],
        default="mix",
        help="stereo: mix the channels into one stream, or split them (each its own stream: agent "
        "left, customer right, merged by time)",
    )
    stream.add_argument(
        "--pace",
        choices=["fast", "realtime"],
        default="fast",
        help="send the audio as fast as the service takes it, or at 1x speed as a live source would",
    )
    stream.add_argument("--out", type=Path, default=Path("transcripts"), help="folder for the outputs")
    stream.add_argument("--concurrency", type=positive_int, default=4, help="files streamed at the same time")
    stream.add_argument("--quiet", action="store_true", help="no progress and no sentences, only errors")
    stream.add_argument("--json", action="store_true", help="one JSON event per line on stdout")
    _instant_flag(stream)
    stream.set_defaults(run=_stream, interrupt="prompt")


def _add_demo(command: NewCommand) -> None:
    demo = command(
        "demo",
        "transcribe the bundled samples and print each transcript beside its script",
        "What `make demo` runs: the bundled samples (WAV, Ogg Opus, MP3, a stereo call, an MP4 video) "
        "through the local stack with the offline Whisper engine, each transcript printed with its word "
        "error rate.",
    )
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="folder for the outputs")
    demo.add_argument(
        "--timeout", type=positive_seconds, default=900.0, help="seconds to wait for all samples"
    )
    demo.set_defaults(run=_local("demo"), interrupt="prompt")


def _add_normalize(command: NewCommand) -> None:
    normalize = command(
        "normalize",
        "provider result JSON → canonical transcript JSON",
        "Turn a raw provider result (a SIS query/callback body, a DashScope transcription_url file) into "
        "bucketscribe's canonical transcript JSON on stdout.",
        "example:\n  bucketscribe normalize --provider sis result.json > transcript.json\n",
    )
    normalize.add_argument(
        "--provider", choices=["sis", "dashscope"], required=True, help="who produced the result"
    )
    normalize.add_argument("--model", help="model/property name to record in the transcript (default: none)")
    normalize.add_argument("--language", help="language code to record in the transcript (default: none)")
    normalize.add_argument("result", help="path to the provider's JSON result ('-' for stdin)")
    normalize.set_defaults(run=_normalize)


def _add_render(command: NewCommand) -> None:
    render = command(
        "render",
        "canonical transcript JSON → txt / srt / vtt / json",
        "Render a canonical transcript JSON as text or subtitles on stdout.",
        "example:\n  bucketscribe render --format srt transcripts/talk.mp3.json > talk.srt\n",
    )
    render.add_argument("--format", choices=list(OUTPUT_FORMATS), required=True, help="the output format")
    render.add_argument(
        "--no-speakers", action="store_true", help="leave speaker names out of txt, srt and vtt"
    )
    render.add_argument("transcript", help="path to a canonical transcript JSON ('-' for stdin)")
    render.set_defaults(run=_render)


def _add_job_id(command: NewCommand) -> None:
    job_id = command(
        "job-id",
        "the job id of an upload, for GET /jobs/{id}",
        "Print the job id the pipeline gives an upload: derived from bucket, key and version id (or ETag).",
        "example:\n  bucketscribe job-id recordings incoming/call.wav "
        "--etag 4d0f288bd92b6b993474d21f618563e1\n",
    )
    job_id.add_argument("bucket", help="the bucket name")
    job_id.add_argument("key", help="the object key, as uploaded (not URL-encoded)")
    revision = job_id.add_mutually_exclusive_group(required=True)
    revision.add_argument(
        "--etag", help="the ETag the upload returned (unversioned buckets; this or --version-id is required)"
    )
    revision.add_argument(
        "--version-id", help="the version id (versioned buckets; this or --etag is required)"
    )
    job_id.set_defaults(run=_job_id)


_SETTINGS_NOTE = (
    "It reads the job store the functions use, from the same settings (BUCKETSCRIBE_JOBS_TABLE, "
    "BUCKETSCRIBE_AWS_ENDPOINT_URL, AWS credentials): `bucketscribe up` prints them for the local stack."
)


def _add_jobs(command: NewCommand) -> None:
    jobs = command(
        "jobs",
        "list jobs from the job store (state, attempts, age, error)",
        "List jobs, most recently changed first: state, attempts made, age, job id, upload, and for "
        "failed jobs the code and reason. " + _SETTINGS_NOTE,
        "examples:\n  bucketscribe jobs --state FAILED --since 2h\n"
        "  bucketscribe jobs --prefix recordings/incoming/calls/ --json\n",
    )
    jobs.add_argument(
        "--state",
        choices=["ACCEPTED", "SUBMITTING", "SUBMITTED", "DONE", "FAILED"],
        help="only jobs in this state (default: every state)",
    )
    jobs.add_argument("--prefix", help="only uploads whose BUCKET/KEY starts with this (default: all)")
    jobs.add_argument(
        "--since", help="only jobs changed since: an age (30m, 2h, 3d) or an ISO time (default: any time)"
    )
    jobs.add_argument("--limit", type=positive_int, default=50, help="at most this many jobs")
    jobs.add_argument("--json", action="store_true", help="one JSON object per job (the status API's view)")
    jobs.set_defaults(run=_job_admin("list_jobs"))


def _add_status(command: NewCommand) -> None:
    status = command(
        "status",
        "where one upload or job stands, with its attempts",
        "Show the latest job for an upload (s3://BUCKET/KEY or obs://BUCKET/KEY, as uploaded; no ETag "
        "needed) or for a job id: state, each attempt and its provider task, outputs, next check. "
        + _SETTINGS_NOTE,
        'examples:\n  bucketscribe status "s3://recordings/incoming/calls/2026-11-20 agent+42.wav"\n'
        "  bucketscribe status 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b --json\n",
    )
    status.add_argument("target", help="s3://BUCKET/KEY, obs://BUCKET/KEY or a job id")
    status.add_argument("--json", action="store_true", help="the status API's JSON")
    status.set_defaults(run=_job_admin("show_status"))


def _add_redrive(command: NewCommand) -> None:
    redrive = command(
        "redrive",
        "run finished (failed) jobs again as a new attempt",
        "Send failed jobs back for a new attempt, linked to the earlier ones in the job's record; the "
        "reconciler's next run (every 5 minutes when deployed) submits them. A job still in flight is "
        "never re-driven (it would be paid for twice); a DONE job only with --include-done. Exit code 1 "
        "when any job was not re-driven. " + _SETTINGS_NOTE,
        "examples:\n  bucketscribe redrive 3f2a9c0e4b1d4e8f9a6b7c5d2e1f0a9b\n"
        '  bucketscribe redrive --failed --since 6h --reason "SIS quota raised"\n',
    )
    redrive.add_argument("job_ids", nargs="*", metavar="JOB_ID", help="the jobs to run again")
    redrive.add_argument(
        "--failed", action="store_true", help="every FAILED job (with --since: changed since)"
    )
    redrive.add_argument(
        "--since", help="with --failed: an age (30m, 2h, 3d) or an ISO time (default: any time)"
    )
    redrive.add_argument("--limit", type=positive_int, default=1000, help="with --failed: at most this many")
    redrive.add_argument("--include-done", action="store_true", help="also run DONE jobs again")
    redrive.add_argument("--reason", default="operator re-drive", help="recorded on the new attempt")
    redrive.set_defaults(run=_job_admin("redrive"))


# ----- Ctrl-C --------------------------------------------------------------------------------------


class _InterruptState:
    """What a second Ctrl-C or the grace timer says before leaving (set by commands that know more)."""

    note = "Interrupted."


_interrupt = _InterruptState()


def _leave_now(*_: object, reported: bool = False) -> NoReturn:
    """Out at once: no worker thread is waited for, no cleanup can hang or print a traceback."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
    if not reported:
        os.write(2, f"{_interrupt.note}\n".encode())
    os._exit(ExitCode.INTERRUPTED)


def _install_interrupt_handler(policy: str) -> None:
    """``prompt``: Ctrl-C interrupts the work and the process is gone within INTERRUPT_GRACE_S.
    ``graceful`` (``up``): the first Ctrl-C asks for a clean stop, a second one leaves at once."""

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, _leave_now)
        if policy == "prompt":
            timer = threading.Timer(INTERRUPT_GRACE_S, _leave_now)
            timer.daemon = True
            timer.start()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"bucketscribe: error: {message}\n")
    raise SystemExit(ExitCode.USAGE)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A worker thread that logs while the process winds down must not print "--- Logging error ---".
    logging.raiseExceptions = False
    interrupt_policy = getattr(args, "interrupt", None)
    if interrupt_policy:
        _install_interrupt_handler(interrupt_policy)
    try:
        code: int = args.run(args)
    except BadInput as exc:
        _fail(str(exc))
    except KeyboardInterrupt as interrupt:
        _leave_now(reported=isinstance(interrupt, ReportedInterrupt))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())

"""Commands that need neither a stack nor a deployment: a provider's result → the canonical
transcript (``normalize``), a transcript → text or subtitles (``render``), an upload → its job id."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, cast

from pydantic import ValidationError

from bucketscribe.cli.arguments import OUTPUT_FORMATS, NewCommand, output_formats
from bucketscribe.cli.exit_codes import BadInput, ExitCode, refuse
from bucketscribe.domain.profile import OutputFormat
from bucketscribe.domain.transcript import Transcript
from bucketscribe.providers import registry as providers


def register(command: NewCommand) -> None:
    _add_normalize(command)
    _add_render(command)
    _add_job_id(command)


def _result_formats() -> list[str]:
    """The providers whose results can be read offline (a stream leaves none to read)."""
    return [name for name, plugin in providers.PLUGINS.items() if not plugin.streams]


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
    data = _read_json(args.result)
    plugin = providers.plugin(args.provider)
    try:
        transcript = plugin.transcript_from_result(data, model=args.model, language=args.language)
    except (ValidationError, ValueError) as exc:
        raise BadInput(args.result, str(exc).splitlines()[0]) from None
    sys.stdout.write(transcript.model_dump_json(indent=2) + "\n")
    return ExitCode.OK


def _render(args: argparse.Namespace) -> int:
    from bucketscribe.domain.profile import RenderOptions
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
    chosen = OUTPUT_FORMATS if "all" in args.format else tuple(dict.fromkeys(args.format))
    formats = [cast(OutputFormat, fmt) for fmt in chosen]  # output_formats accepted only these
    if len(formats) > 1 and not args.out:
        return refuse(args, "--format", f"{len(formats)} formats need --out PREFIX (stdout holds one)")
    options = RenderOptions(speaker_labels=not args.no_speakers)
    if not args.out:
        sys.stdout.write(render(transcript, formats[0], options))
        return ExitCode.OK
    # One parse of the transcript serves every format; each file's path goes to stdout.
    for fmt in formats:
        path = Path(f"{args.out}.{fmt}")
        try:
            path.write_text(render(transcript, fmt, options), encoding="utf-8")
        except OSError as exc:
            raise BadInput(str(path), exc.strerror or str(exc)) from None
        sys.stdout.write(f"{path}\n")
    return ExitCode.OK


def _job_id(args: argparse.Namespace) -> int:
    from bucketscribe.domain.upload import ObjectRef

    ref = ObjectRef(bucket=args.bucket, key=args.key, etag=args.etag, version_id=args.version_id)
    sys.stdout.write(ref.job_id() + "\n")
    return ExitCode.OK


def _add_normalize(command: NewCommand) -> None:
    normalize = command(
        "normalize",
        "provider result JSON → canonical transcript JSON",
        "Turn a raw provider result (as the provider's query answers or calls back, or the result file it "
        "points to) into bucketscribe's canonical transcript JSON on stdout.",
        "example:\n"
        f"  bucketscribe normalize --provider {providers.DEFAULT_PROVIDER} result.json > transcript.json\n",
    )
    normalize.add_argument(
        "--provider", choices=_result_formats(), required=True, help="who produced the result"
    )
    normalize.add_argument("--model", help="model/property name to record in the transcript (default: none)")
    normalize.add_argument("--language", help="language code to record in the transcript (default: none)")
    normalize.add_argument("result", help="path to the provider's JSON result ('-' for stdin)")
    normalize.set_defaults(run=_normalize)


def _add_render(command: NewCommand) -> None:
    render = command(
        "render",
        "canonical transcript JSON → txt / srt / vtt / json",
        "Render a canonical transcript JSON as text or subtitles: one format on stdout, or several "
        "into files from one read of the transcript.",
        "examples:\n  bucketscribe render --format srt transcripts/talk.mp3.json > talk.srt\n"
        "  bucketscribe render --format all --out talk transcripts/talk.mp3.json  # talk.json, talk.txt...\n",
    )
    render.add_argument(
        "--format",
        type=output_formats,
        required=True,
        metavar="FORMATS",
        help=f"{', '.join(OUTPUT_FORMATS)}; several comma-separated, or all (they need --out)",
    )
    render.add_argument(
        "--out",
        metavar="PREFIX",
        help="write PREFIX.<format> for each format and print each path (default: the one format on stdout)",
    )
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

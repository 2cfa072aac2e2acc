"""The ``bucketscribe`` command.

- ``normalize --provider sis RESULT.json``: a raw provider result → canonical JSON on stdout
- ``render --format txt|srt|vtt|json TRANSCRIPT.json``: canonical JSON → a format on stdout
- ``up`` / ``transcribe FILE...`` / ``demo``: the embedded local stack (``bucketscribe.local``)
- ``stream FILE... [--translate en]``: many files at once over DashScope's real-time API (gummy)

Bad input gives one line on stderr naming the file and the problem, and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pydantic import ValidationError

from bucketscribe.model import Transcript

EXIT_BAD_INPUT = 2


class BadInput(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


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
    return 0


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
    return 0


def _job_id(args: argparse.Namespace) -> int:
    from bucketscribe.model import ObjectRef

    ref = ObjectRef(bucket=args.bucket, key=args.key, etag=args.etag, version_id=args.version_id)
    sys.stdout.write(ref.job_id() + "\n")
    return 0


def _local(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from bucketscribe.local import commands

        handler: Callable[[argparse.Namespace], int] = getattr(commands, command)
        return handler(args)

    return run


def _stream(args: argparse.Namespace) -> int:
    from bucketscribe.local.streaming import stream

    return stream(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bucketscribe", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    normalize = sub.add_parser("normalize", help="provider result JSON → canonical transcript JSON")
    normalize.add_argument("--provider", choices=["sis", "dashscope"], required=True)
    normalize.add_argument("--model", help="model/property name to record in the transcript")
    normalize.add_argument("--language", help="language code to record in the transcript")
    normalize.add_argument("result", help="path to the provider's JSON result ('-' for stdin)")
    normalize.set_defaults(run=_normalize)

    render = sub.add_parser("render", help="canonical transcript JSON → txt / srt / vtt / json")
    render.add_argument("--format", choices=["txt", "srt", "vtt", "json"], required=True)
    render.add_argument(
        "--no-speakers", action="store_true", help="leave speaker names out of txt, srt and vtt"
    )
    render.add_argument("transcript", help="path to a canonical transcript JSON ('-' for stdin)")
    render.set_defaults(run=_render)

    job_id = sub.add_parser("job-id", help="the job id of an upload, for GET /jobs/{id}")
    job_id.add_argument("bucket")
    job_id.add_argument("key", help="the object key, as uploaded (not URL-encoded)")
    revision = job_id.add_mutually_exclusive_group(required=True)
    revision.add_argument("--etag", help="the ETag the upload returned")
    revision.add_argument("--version-id", help="the version id (versioned buckets)")
    job_id.set_defaults(run=_job_id)

    up = sub.add_parser("up", help="run the local stack until Ctrl-C")
    up.add_argument("--port", type=int, default=4566, help="S3/DynamoDB/SQS endpoint port (moto)")
    up.add_argument("--instant", action="store_true", help="skip the speech engine (fixed text)")
    up.set_defaults(run=_local("up"))

    transcribe = sub.add_parser("transcribe", help="transcribe local files through the local stack")
    transcribe.add_argument("files", nargs="+", type=Path)
    transcribe.add_argument("--profile", default=None, help="profile name (default: by prefix)")
    transcribe.add_argument("--out", type=Path, default=Path("transcripts"), help="where to write outputs")
    transcribe.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for all files")
    transcribe.add_argument("--instant", action="store_true", help="skip the speech engine (fixed text)")
    transcribe.set_defaults(run=_local("transcribe"))

    stream = sub.add_parser(
        "stream", help="stream local files at once over DashScope real-time (gummy), optionally translated"
    )
    stream.add_argument("files", nargs="+", type=Path)
    stream.add_argument(
        "--translate", metavar="LANG", default=None, help="also translate into LANG (e.g. en)"
    )
    stream.add_argument(
        "--source-language", default="auto", help="spoken language: auto (default), en, zh, ..."
    )
    stream.add_argument("--out", type=Path, default=Path("transcripts"), help="where to write outputs")
    stream.add_argument("--concurrency", type=int, default=4, help="files streamed at the same time")
    stream.set_defaults(run=_stream)

    demo = sub.add_parser("demo", help="transcribe the bundled samples and print the transcripts")
    demo.add_argument("--out", type=Path, default=Path("out/demo"), help="where to write outputs")
    demo.add_argument("--timeout", type=float, default=900.0)
    demo.set_defaults(run=_local("demo"))
    return parser


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"bucketscribe: error: {message}\n")
    raise SystemExit(EXIT_BAD_INPUT)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except BadInput as exc:
        _fail(str(exc))
    return code


if __name__ == "__main__":
    raise SystemExit(main())

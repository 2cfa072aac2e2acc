"""The dev kit's commands, added to ``bucketscribe`` through the ``bucketscribe.commands`` entry
point: ``transcribe`` and ``demo`` (files through the local stack and the offline engine), ``up``
(the stack as a service) and ``stream`` (files over real-time recognition, the real service or the
local emulator)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from pathlib import Path
from typing import get_args

from pydantic import ValidationError

from bucketscribe.cli.arguments import NewCommand, output_formats, port_number, positive_int, positive_seconds
from bucketscribe.cli.exit_codes import ExitCode, refuse
from bucketscribe.cli.interrupts import INTERRUPT


def register(command: NewCommand) -> None:
    _add_transcribe(command)
    _add_up(command)
    _add_stream(command)
    _add_demo(command)


def _local(command: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from bucketscribe_local import commands

        handler: Callable[[argparse.Namespace], int] = getattr(commands, command)
        return handler(args)

    return run


def _emulator_translation_targets() -> frozenset[str]:
    # Imported only when the emulator answers: its package takes a quarter of a second to load.
    from bucketscribe_local.dashscope_server.requests import SUPPORTED_TRANSLATION_TARGETS

    return SUPPORTED_TRANSLATION_TARGETS


def _stream(args: argparse.Namespace) -> int:
    from bucketscribe.domain.profile import Profile
    from bucketscribe.providers.dashscope.options import RealtimeOptions
    from bucketscribe_local.commands import checked_inputs
    from bucketscribe_local.streaming import API_KEY_ENV, stream

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
        return refuse(args, what, str(first["msg"]).removeprefix("Value error, "))
    local = not os.environ.get(API_KEY_ENV)
    if local and args.translate and args.translate not in (targets := _emulator_translation_targets()):
        return refuse(
            args,
            f"--translate {args.translate}",
            f"the local emulator (offline Whisper) translates only into {', '.join(sorted(targets))}; "
            f"set {API_KEY_ENV} to use the real service",
        )
    # Each file is checked for what the options need of it (a split needs no stereo: mono is streamed whole).
    mixed = options.model_copy(update={"channels": "mix"})
    profile = Profile.model_validate(
        {"provider": "dashscope-realtime", "mode": "realtime", "realtime": mixed.model_dump()}
    )
    inputs = checked_inputs([(path, profile) for path in args.files], doing="streamed", json_events=args.json)
    if inputs is None:
        return ExitCode.USAGE
    INTERRUPT.note = f"Interrupted: the files shown as done have their outputs in {args.out}/."
    return stream(args, inputs, options)


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
  bucketscribe up --port 0 --json          # a free port; one JSON line with every endpoint, token and
                                           # the emulators' credentials (for your own SDK clients)
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
    from bucketscribe_local.model_store import ModelStoreError, resolve_model

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
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="audio or video files to transcribe; - reads one recording from stdin",
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
    transcribe.add_argument(
        "--task",
        choices=["transcribe", "translate"],
        default="transcribe",
        help="translate: English text whatever was spoken, as Whisper's translate task (default: transcribe)",
    )
    _engine_options(transcribe)
    _instant_flag(transcribe)
    _cloud_flag(transcribe)
    transcribe.set_defaults(run=_local("transcribe"), interrupt="prompt")


def _engine_options(parser: argparse.ArgumentParser) -> None:
    """The offline engine's settings, as options: each sets its BUCKETSCRIBE_WHISPER_* setting."""
    engine = parser.add_argument_group("offline engine (each also a BUCKETSCRIBE_WHISPER_* setting)")
    engine.add_argument(
        "--device",
        choices=["auto", "cpu", "cuda"],
        help="where Whisper runs (default: auto, a GPU if there is one)",
    )
    engine.add_argument(
        "--compute-type",
        metavar="TYPE",
        help="CTranslate2's compute type, e.g. int8, float16 (default: by device)",
    )
    engine.add_argument("--beam-size", type=positive_int, metavar="N", help="beam search width (default: 1)")
    engine.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="CPU threads per decoding worker (default: the cores shared out)",
    )


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
        help="print one JSON line with every endpoint, bucket, prefix and token, and the emulators' "
        "credentials (sis_ak, sis_sk, sis_project_id, dashscope_api_key); logs go to stderr",
    )
    _instant_flag(up)
    _cloud_flag(up)
    up.set_defaults(run=_local("up"), interrupt="graceful")


def _add_stream(command: NewCommand) -> None:
    from bucketscribe.providers.dashscope.options import RealtimeModel

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

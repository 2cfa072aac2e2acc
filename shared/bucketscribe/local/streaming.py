"""``bucketscribe stream FILE...``: many local files at once over DashScope's real-time API (gummy).

Each file is decoded to 16 kHz mono PCM, streamed through its own WebSocket task and written as
``<out>/<name>.json|.txt|.srt|.vtt`` (plus ``<name>.<lang>.srt|.vtt`` bilingual subtitles when
translating). With ``BUCKETSCRIBE_DASHSCOPE_API_KEY`` set it talks to the real service
(``BUCKETSCRIBE_DASHSCOPE_WS_URL`` overrides the endpoint); otherwise to a local DashScope
emulator backed by the offline Whisper engine.

Exit code: 0 all done, 1 some file failed, 2 no file was usable audio.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from bucketscribe.model import Transcript
from bucketscribe.providers.realtime import DEFAULT_WEBSOCKET_URL, RealtimeError, RealtimeTranslator
from bucketscribe.render import SUFFIXES, bilingual_suffix, render, render_bilingual

API_KEY_ENV = "BUCKETSCRIBE_DASHSCOPE_API_KEY"
WS_URL_ENV = "BUCKETSCRIBE_DASHSCOPE_WS_URL"
# The CLI keeps only final sentences, so the local emulator need not re-recognise every second of
# audio for interim results; a pass per 30 s still exercises its streaming windows on long files.
LOCAL_INTERIM_INTERVAL_S = 30.0

EXIT_SOME_FAILED = 1
EXIT_NONE_USABLE = 2


@dataclass(frozen=True)
class Endpoint:
    api_key: str
    websocket_url: str
    description: str


@dataclass
class FileOutcome:
    path: Path
    name: str
    usable: bool = False
    outputs: tuple[Path, ...] = ()
    error: str | None = None


class StateLines:
    """One line per file state change (queued → streaming → done / failed), safe across threads."""

    def __init__(self, names: list[str], out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._width = max((len(n) for n in names), default=0)

    def show(self, name: str, state: str) -> None:
        with self._lock:
            elapsed = time.monotonic() - self._started
            self._out.write(f"  {elapsed:6.1f}s  {name:<{self._width}}  {state}\n")
            self._out.flush()


def decode_pcm16(path: Path) -> bytes:
    """The file's audio as 16-bit little-endian 16 kHz mono PCM (``UnreadableAudio`` if none)."""
    import numpy as np

    from bucketscribe.local.whisper_engine import decode_speech

    samples = decode_speech(path)
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()


def write_outputs(
    transcript: Transcript, out_dir: Path, name: str, translate: str | None
) -> tuple[Path, ...]:
    written: list[Path] = []
    for fmt, suffix in SUFFIXES.items():
        written.append(out_dir / f"{name}{suffix}")
        written[-1].write_text(render(transcript, fmt), encoding="utf-8")
    if translate is not None:
        for subtitle in ("srt", "vtt"):
            written.append(out_dir / f"{name}{bilingual_suffix(translate, subtitle)}")
            written[-1].write_text(render_bilingual(transcript, translate, subtitle), encoding="utf-8")
    return tuple(written)


def stream_file(
    outcome: FileOutcome,
    translator: RealtimeTranslator,
    *,
    source_language: str,
    translate: str | None,
    out_dir: Path,
    lines: StateLines,
) -> FileOutcome:
    from bucketscribe.local.speech import UnreadableAudio

    try:
        pcm = decode_pcm16(outcome.path)
    except (UnreadableAudio, OSError) as error:
        # PyAV's reason ends in an errno and the path; its first clause is the useful part.
        outcome.error = f"not an audio or video file ({str(error).split(':')[0]})"
        lines.show(outcome.name, f"failed: {outcome.error}")
        return outcome
    outcome.usable = True
    lines.show(outcome.name, f"streaming ({len(pcm) / 32000:.1f} s of audio)")
    try:
        transcript = translator.stream(pcm, source_language=source_language, target_language=translate)
        outcome.outputs = write_outputs(transcript, out_dir, outcome.name, translate)
    except RealtimeError as error:
        outcome.error = f"DashScope {error.code}: {error.message}"
    except Exception as error:  # one file's surprise must not stop the others
        outcome.error = f"{type(error).__name__}: {error}"
    if outcome.error is None:
        count = len(transcript.segments)
        lines.show(outcome.name, f"done ({count} sentence{'' if count == 1 else 's'})")
    else:
        lines.show(outcome.name, f"failed: {outcome.error}")
    return outcome


@contextmanager
def open_endpoint() -> Iterator[Endpoint]:
    """The real service when a key is configured, else a local emulator for this run."""
    api_key = os.environ.get(API_KEY_ENV)
    if api_key:
        url = os.environ.get(WS_URL_ENV) or DEFAULT_WEBSOCKET_URL
        yield Endpoint(api_key=api_key, websocket_url=url, description=f"Streaming to DashScope at {url}")
        return
    from bucketscribe.local.dashscope_server import DashScopeEmulator
    from bucketscribe.local.whisper_engine import shared_engine

    key = "sk-local-" + secrets.token_hex(8)
    emulator = DashScopeEmulator(
        api_keys=[key], engine=shared_engine(), interim_interval_s=LOCAL_INTERIM_INTERVAL_S
    )
    with emulator:
        yield Endpoint(
            api_key=key,
            websocket_url=emulator.ws_url,
            description=(
                f"No {API_KEY_ENV} set: streaming to a local DashScope emulator "
                f"(offline Whisper engine) at {emulator.ws_url}"
            ),
        )


def _unique_names(paths: list[Path]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for path in paths:
        count = seen.get(path.name, 0) + 1
        seen[path.name] = count
        names.append(path.name if count == 1 else f"{path.stem}-{count}{path.suffix}")
    return names


def run_streams(
    paths: list[Path],
    *,
    out_dir: Path,
    translate: str | None,
    source_language: str,
    concurrency: int,
    out: TextIO,
) -> tuple[int, list[FileOutcome]]:
    """Stream every file (``concurrency`` at a time); returns (exit code, outcome per file)."""
    outcomes = [FileOutcome(path=p, name=n) for p, n in zip(paths, _unique_names(paths), strict=True)]
    with open_endpoint() as endpoint:
        out.write(endpoint.description + "\n")
        out_dir.mkdir(parents=True, exist_ok=True)
        lines = StateLines([o.name for o in outcomes], out)
        pending: list[FileOutcome] = []
        for outcome in outcomes:
            if outcome.path.is_file():
                lines.show(outcome.name, "queued")
                pending.append(outcome)
            else:
                outcome.error = "no such file"
                lines.show(outcome.name, "failed: no such file")
        translator = RealtimeTranslator(api_key=endpoint.api_key, websocket_url=endpoint.websocket_url)
        with ThreadPoolExecutor(max_workers=max(concurrency, 1), thread_name_prefix="stream") as pool:
            futures = [
                pool.submit(
                    stream_file,
                    outcome,
                    translator,
                    source_language=source_language,
                    translate=translate,
                    out_dir=out_dir,
                    lines=lines,
                )
                for outcome in pending
            ]
            for future in futures:
                future.result()
    if not any(o.usable for o in outcomes):
        return EXIT_NONE_USABLE, outcomes
    return (EXIT_SOME_FAILED if any(o.error for o in outcomes) else 0), outcomes


def stream(args: argparse.Namespace) -> int:
    """The ``stream`` sub-command."""
    source = args.source_language
    code, outcomes = run_streams(
        list(args.files),
        out_dir=args.out,
        translate=args.translate,
        source_language=source,
        concurrency=args.concurrency,
        out=sys.stdout,
    )
    done = [o for o in outcomes if o.outputs]
    if done:
        kinds = "json, txt, srt, vtt" + (f", bilingual .{args.translate}.srt/.vtt" if args.translate else "")
        sys.stdout.write(f"\n{len(done)} of {len(outcomes)} files done; outputs in {args.out}/ ({kinds}).\n")
    for outcome in outcomes:
        if outcome.error:
            sys.stderr.write(f"bucketscribe: error: {outcome.path}: {outcome.error}\n")
    return code

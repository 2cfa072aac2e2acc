"""``bucketscribe stream FILE...``: many local files at once over DashScope's real-time API.

Each file is decoded to 16 kHz PCM and streamed through its own WebSocket task (a stereo call
split per channel: one task each, the sentences merged by time and labelled with the speakers),
and written as ``<out>/<name>.json|.txt|.srt|.vtt`` (plus ``<name>.<lang>.srt|.vtt`` bilingual
subtitles when translating). With ``BUCKETSCRIBE_DASHSCOPE_API_KEY`` set it talks to the real
service (``BUCKETSCRIBE_DASHSCOPE_WS_URL`` overrides the endpoint); otherwise to a local DashScope
emulator backed by the offline Whisper engine.

What the user sees (``StreamConsole``), per file and prefixed by its name, as it arrives: each
sentence when final (``Transcript ==>``) and its translation (``Translate ==>``), then a metrics
line (request id, first- and last-package delay, real-time factor); on a terminal the sentence
being spoken updates in place on a board of the files in flight; at the end a summary table.
``--json`` gives one JSON object per event on stdout, ``--quiet`` only the errors.

Exit code: 0 all done, 1 some file failed, 130 interrupted (2, refused inputs, is decided before).
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bucketscribe.cli.exit_codes import ExitCode, ReportedInterrupt
from bucketscribe.cli.progress import (
    BatchProgress,
    BoardReporter,
    FileProgress,
    JsonReporter,
    LineReporter,
    QuietReporter,
    Reporter,
    Stage,
    clock_text,
)
from bucketscribe.cli.stream_text import delay_text, factor_text
from bucketscribe.domain.coverage import COVERAGE_CODES, SpeechSpan, with_coverage
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.media_tools import SPLIT_CHANNELS, SpeechPcm
from bucketscribe.ports.provider import StreamedRecording
from bucketscribe.providers.dashscope.options import RealtimeOptions
from bucketscribe.providers.dashscope.realtime import (
    DEFAULT_WEBSOCKET_URL,
    Pace,
    RealtimeError,
    RealtimeStreamer,
    Sentence,
    StreamCancelled,
    dropped_channels_text,
    load_sdk,
    stream_recording,
)
from bucketscribe.render import SUFFIXES, bilingual_suffix, render, render_bilingual
from bucketscribe_local.inputs import LocalInput, unique_output_names

API_KEY_ENV = "BUCKETSCRIBE_DASHSCOPE_API_KEY"
WS_URL_ENV = "BUCKETSCRIBE_DASHSCOPE_WS_URL"
# The local emulator re-recognises a long utterance every this many seconds of its audio, so a
# speaker who goes on without a pause shows interim text (the real service sends it more often).
LOCAL_INTERIM_INTERVAL_S = 1.0
# How often the main thread looks up from waiting (a Ctrl-C lands between looks).
WAIT_SLICE_S = 0.2


@dataclass(frozen=True)
class Endpoint:
    api_key: str
    websocket_url: str
    description: str


@dataclass(frozen=True)
class StreamSettings:
    options: RealtimeOptions
    out_dir: Path
    pace: Pace = "fast"
    concurrency: int = 4


@dataclass
class StreamedFile:
    input: LocalInput
    progress: FileProgress
    output_name: str
    """The outputs' name in the output folder: the file's name, made unique."""
    result: StreamedRecording | None = None
    channel_results: list[tuple[str | None, StreamedRecording]] = field(default_factory=list)
    sentences: int = 0

    @property
    def label(self) -> str:
        return self.output_name

    def record(self, sentence: Sentence) -> bool:
        """Count a final sentence and how far the audio is heard; True when it is a new one (not
        an interim, nor a translation sent on its own for a sentence counted already)."""
        if not sentence.final or sentence.translation_only:
            return False
        self.sentences += 1
        self.progress.audio_ms_done = max(self.progress.audio_ms_done or 0, sentence.end_ms)
        return True


@dataclass
class StreamRun:
    files: list[StreamedFile]
    batch: BatchProgress

    @property
    def exit_code(self) -> int:
        return (
            ExitCode.OK if all(f.progress.stage is Stage.DONE for f in self.files) else ExitCode.SOME_FAILED
        )


# ----- what the user sees ----------------------------------------------------------------------------


class StreamConsole:
    """Every file's progress (through a ``progress`` reporter) and its sentences, as they arrive.

    ``mode``: ``board`` (a terminal: the files in flight redrawn in place, each with what is being
    said; final sentences printed above), ``lines`` (plain lines: logs, pipes), ``json`` (one
    object per event) or ``quiet``. Safe to call from many threads.
    """

    def __init__(self, mode: str, out: TextIO, err: TextIO = sys.stderr) -> None:
        self.mode = mode
        self._out = out
        self._err = err
        self._lock = threading.Lock()
        # Plain lines: what was heard goes to stdout, progress to stderr (as `transcribe` does), so
        # `stream ... > heard.txt` keeps only what was heard. The board is one terminal view.
        self._reporter = _reporter(mode, err if mode == "lines" else out)
        self.batch = BatchProgress([])

    @classmethod
    def for_terminal(cls, *, json_events: bool, quiet: bool, out: TextIO = sys.stdout) -> StreamConsole:
        if json_events:
            return cls("json", out)
        if quiet:
            return cls("quiet", out)
        return cls("board" if out.isatty() else "lines", out)

    def say(self, text: str) -> None:
        """A human message (the endpoint, a warning); none with --json or --quiet."""
        if self.mode in ("board", "lines"):
            self._notice([text])

    def start(self, files: list[StreamedFile]) -> None:
        self.batch = BatchProgress([f.progress for f in files])
        for streamed in files:
            self.changed(streamed)

    def changed(self, streamed: StreamedFile) -> None:
        with self._lock:
            self._reporter.changed(self.batch, streamed.progress)

    def warn(self, streamed: StreamedFile, text: str) -> None:
        if self.mode == "json":
            self._emit({"event": "warning", "file": streamed.label, "message": text})
        elif self.mode != "quiet":
            self._notice([f"[{streamed.label}] warning: {text}"])

    def sentence(self, streamed: StreamedFile, sentence: Sentence) -> None:
        if self.mode == "json":
            self._emit(_sentence_event(streamed, sentence, self.batch.elapsed_s))
            return
        if not sentence.final:
            if self.mode == "board" and not sentence.translation_only:
                streamed.progress.live_text = _who(sentence) + sentence.text
                self.changed(streamed)
            return
        if not sentence.translation_only:
            streamed.progress.live_text = None
        if self.mode == "quiet":
            return
        prefix = f"[{streamed.label}] {_who(sentence)}"
        # A translation on its own belongs to a sentence whose Transcript line is out already.
        lines = [] if sentence.translation_only else [f"{prefix}Transcript ==> {sentence.text}"]
        if sentence.translation is not None:
            lines.append(f"{prefix}Translate ==> {sentence.translation}")
        self._print(lines)

    def metrics(self, streamed: StreamedFile, recording: StreamedRecording, speaker: str | None) -> None:
        metrics = recording.metrics
        if self.mode == "json":
            self._emit(
                {
                    "event": "metrics",
                    "file": streamed.label,
                    "speaker": speaker,
                    "request_id": recording.task_id,
                    "first_package_ms": metrics.first_package_ms,
                    "last_package_ms": metrics.last_package_ms,
                    "audio_s": round(metrics.audio_ms / 1000, 2),
                    "elapsed_s": round(metrics.elapsed_ms / 1000, 2),
                    "realtime_factor": _rounded(metrics.realtime_factor),
                }
            )
        elif self.mode != "quiet":
            who = f"{speaker}: " if speaker else ""
            self._print(
                [
                    f"[{streamed.label}] {who}Metric ==> request {recording.task_id}"
                    f" · first package {delay_text(metrics.first_package_ms)}"
                    f" · last package {delay_text(metrics.last_package_ms)}"
                    f" · real-time factor {factor_text(metrics.realtime_factor)}"
                ]
            )

    def summary(self, run: StreamRun, out_dir: Path, translate: str | None) -> None:
        for streamed in run.files:
            progress = streamed.progress
            if progress.stage is not Stage.DONE:
                self._err.write(f"bucketscribe: failed: {progress.path}: {progress.detail()}\n")
        if self.mode == "json":
            self._emit(
                {
                    "event": "summary",
                    "exit_code": int(run.exit_code),
                    "done": run.batch.done,
                    "failed": run.batch.failed,
                    "total": len(run.files),
                    "elapsed_s": round(run.batch.elapsed_s, 2),
                    "files": [_file_summary(f) for f in run.files],
                }
            )
            return
        if self.mode == "quiet":
            return
        kinds = "json, txt, srt, vtt" + (f", bilingual .{translate}.srt/.vtt" if translate else "")
        lines = ["", *summary_table(run.files)]
        lines.append(
            f"\n{run.batch.done} of {len(run.files)} files done"
            + (f", {run.batch.failed} failed" if run.batch.failed else "")
            + f" in {clock_text(run.batch.elapsed_s)}"
            + (f"; outputs in {out_dir}/ ({kinds})." if run.batch.done else ".")
        )
        self._print(lines)

    def interrupted(self, run: StreamRun, out_dir: Path) -> None:
        done = [f for f in run.files if f.progress.stage is Stage.DONE]
        unfinished = [f for f in run.files if not f.progress.stage.is_final]
        if self.mode == "json":
            self._emit(
                {
                    "event": "interrupted",
                    "done": [f.label for f in done],
                    "unfinished": [f.label for f in unfinished],
                    "outputs": {f.label: [str(p) for p in f.progress.outputs] for f in done},
                }
            )
            return
        lines = [
            f"\nInterrupted after {clock_text(run.batch.elapsed_s)}: "
            f"{len(done)} of {len(run.files)} files done."
        ]
        if done:
            lines.append(f"Their outputs are in {out_dir}/: " + ", ".join(f.label for f in done))
        if unfinished:
            lines.append("Not finished (nothing written): " + ", ".join(f.label for f in unfinished))
        self._err.write("\n".join(lines) + "\n")
        self._err.flush()

    def _print(self, lines: list[str]) -> None:
        with self._lock:
            if isinstance(self._reporter, BoardReporter):
                self._reporter.print_above(self.batch, lines)
            else:
                self._out.write("".join(f"{line}\n" for line in lines))
            self._out.flush()

    def _notice(self, lines: list[str]) -> None:
        """Not what was heard (the endpoint, warnings): above the board, or on stderr."""
        if self.mode == "board":
            self._print(lines)
            return
        with self._lock:
            self._err.write("".join(f"{line}\n" for line in lines))
            self._err.flush()

    def _emit(self, event: dict[str, Any]) -> None:
        with self._lock:
            assert isinstance(self._reporter, JsonReporter)
            self._reporter.emit(event)


def _reporter(mode: str, out: TextIO) -> Reporter:
    if mode == "board":
        return BoardReporter(out)
    if mode == "lines":
        return LineReporter(out)
    if mode == "json":
        return JsonReporter(out)
    return QuietReporter()


def _who(sentence: Sentence) -> str:
    return f"{sentence.speaker}: " if sentence.speaker else ""


def _sentence_event(streamed: StreamedFile, sentence: Sentence, elapsed_s: float) -> dict[str, Any]:
    return {
        "event": ("translation" if sentence.translation_only else "sentence")
        if sentence.final
        else "interim",
        "file": streamed.label,
        "speaker": sentence.speaker,
        "sentence_id": sentence.sentence_id,
        "start_s": round(sentence.begin_ms / 1000, 2),
        "end_s": round(sentence.end_ms / 1000, 2),
        "text": sentence.text,
        "translation": sentence.translation,
        "language": sentence.translation_language,
        "elapsed_s": round(elapsed_s, 2),
    }


def _file_summary(streamed: StreamedFile) -> dict[str, Any]:
    progress, result = streamed.progress, streamed.result
    metrics = result.metrics if result else None
    return {
        "file": streamed.label,
        "path": str(progress.path),
        "state": progress.stage.value,
        "request_id": result.task_id if result else None,
        "audio_s": round(metrics.audio_ms / 1000, 2) if metrics else None,
        "sentences": streamed.sentences,
        "first_package_ms": metrics.first_package_ms if metrics else None,
        "last_package_ms": metrics.last_package_ms if metrics else None,
        "realtime_factor": _rounded(metrics.realtime_factor) if metrics else None,
        "outputs": [str(p) for p in progress.outputs],
        "error_code": progress.error_code,
        "error": progress.error,
    }


def summary_table(files: list[StreamedFile]) -> list[str]:
    """One row per file: audio, sentences, delays, real-time factor, result."""
    header = ("file", "audio", "sentences", "first package", "last package", "RTF", "result")
    rows = [header]
    for streamed in files:
        metrics = streamed.result.metrics if streamed.result else None
        progress = streamed.progress
        result = (
            progress.stage.value
            if progress.stage is Stage.DONE
            else f"{progress.stage.value}: {progress.detail()}"
        )
        rows.append(
            (
                streamed.label,
                f"{metrics.audio_ms / 1000:.1f} s" if metrics else "-",
                str(streamed.sentences) if metrics else "-",
                delay_text(metrics.first_package_ms) if metrics else "-",
                delay_text(metrics.last_package_ms) if metrics else "-",
                factor_text(metrics.realtime_factor) if metrics else "-",
                result,
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(cell.rjust(width) for cell, width in zip(row[1:-1], widths[1:], strict=True)),
                row[-1],
            ]
        ).rstrip()
        for row in rows
    ]


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


# ----- the work -------------------------------------------------------------------------------------


def write_outputs(transcript: Transcript, out_dir: Path, name: str, translate: str | None) -> list[Path]:
    written: list[Path] = []
    for fmt, suffix in SUFFIXES.items():
        written.append(out_dir / f"{name}{suffix}")
        written[-1].write_text(render(transcript, fmt), encoding="utf-8")
    if translate is not None:
        for subtitle in ("srt", "vtt"):
            written.append(out_dir / f"{name}{bilingual_suffix(translate, subtitle)}")
            written[-1].write_text(render_bilingual(transcript, translate, subtitle), encoding="utf-8")
    return written


def stream_one(
    streamed: StreamedFile,
    streamer: RealtimeStreamer,
    settings: StreamSettings,
    console: StreamConsole,
    cancel: threading.Event,
) -> None:
    """Decode, stream and write one file; its failure is its own (recorded on its progress)."""
    from bucketscribe.media.transcode import decode_pcm16
    from bucketscribe.ports.media_tools import MediaError

    progress = streamed.progress
    options = settings.options
    try:
        speech = decode_pcm16(streamed.input.path, split_channels=options.channels == "split")
        # Found while the file streams (it needs faster-whisper's import and a pass of Silero).
        activity = _background().submit(voice_activity_of, speech)
        progress.audio_ms = speech.duration_ms
        progress.audio_ms_done = 0
        progress.stage = Stage.TRANSCRIBING
        console.changed(streamed)

        def heard(sentence: Sentence) -> None:
            counted = streamed.record(sentence)
            console.sentence(streamed, sentence)
            if counted:
                console.changed(streamed)

        def finished(recording: StreamedRecording, speaker: str | None) -> None:
            streamed.channel_results.append((speaker, recording))
            console.metrics(streamed, recording, speaker)

        streamed.result = stream_recording(
            streamer,
            speech,
            options,
            pace=settings.pace,
            on_sentence=heard,
            on_stream_done=finished,
            cancel=cancel,
        )
        transcript = with_coverage(streamed.result.transcript, speech=activity.result())
        streamed.result = streamed.result.model_copy(update={"transcript": transcript})
        for warning in transcript.warnings:
            if warning.code in COVERAGE_CODES:
                console.warn(streamed, warning.message)
        progress.outputs = write_outputs(
            transcript, settings.out_dir, streamed.output_name, options.translate
        )
        progress.stage = Stage.DONE
    except StreamCancelled:
        return
    except MediaError as error:
        progress.stage, progress.error_code, progress.error = Stage.FAILED, "NOT_AUDIO", str(error)
    except RealtimeError as error:
        progress.stage, progress.error_code, progress.error = Stage.FAILED, error.code, error.explanation
    except Exception as error:  # one file's surprise must not stop the others
        progress.stage, progress.error_code, progress.error = Stage.FAILED, type(error).__name__, str(error)
    progress.live_text = None
    console.changed(streamed)


def voice_activity_of(speech: SpeechPcm) -> list[SpeechSpan] | None:
    """Where the streamed audio has speech, for the outputs' coverage check as batch transcripts
    carry it: the Silero VAD the local engine uses, per channel when the channels were streamed
    apart. None where the local engine is not installed (the check then has only the recording's
    length to go by)."""
    try:
        import numpy as np

        from bucketscribe_local.whisper_engine import detect_voice_activity
    except ImportError:  # pragma: no cover - the local extra is what installs numpy and faster-whisper
        return None
    split = len(speech.tracks) > 1
    spans: list[SpeechSpan] = []
    for channel, track in enumerate(speech.tracks):
        samples = np.frombuffer(track, dtype="<i2").astype(np.float32) / 32768.0
        spans.extend(detect_voice_activity(samples, channel=channel if split else None))
    return spans


_background_pool: ThreadPoolExecutor | None = None
_background_lock = threading.Lock()


def _background() -> ThreadPoolExecutor:
    """One thread for the files' voice activity, beside the streams."""
    global _background_pool
    with _background_lock:
        if _background_pool is None:
            _background_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="voice-activity")
        return _background_pool


def stream_files(
    inputs: list[LocalInput],
    endpoint: Endpoint,
    settings: StreamSettings,
    console: StreamConsole,
    *,
    cancel: threading.Event | None = None,
) -> StreamRun:
    """Stream every file (``settings.concurrency`` at a time) and write its outputs.

    On Ctrl-C the streams are told to stop, the console says what finished, and
    ``ReportedInterrupt`` goes up (cli.py leaves at once).
    """
    cancel = cancel or threading.Event()
    files = [
        StreamedFile(
            input=item,
            progress=FileProgress(label=name, path=item.path, audio_ms=item.duration_ms, stage=Stage.QUEUED),
            output_name=name,
        )
        for item, name in zip(inputs, unique_output_names([i.path for i in inputs]), strict=True)
    ]
    settings.out_dir.mkdir(parents=True, exist_ok=True)
    load_sdk()
    console.start(files)
    run = StreamRun(files=files, batch=console.batch)
    for streamed in files:
        _warn_about_channels(streamed, settings.options, console)
    streamer = RealtimeStreamer(api_key=endpoint.api_key, websocket_url=endpoint.websocket_url)
    pool = ThreadPoolExecutor(max_workers=max(settings.concurrency, 1), thread_name_prefix="stream")
    try:
        pending: set[Future[None]] = {
            pool.submit(stream_one, streamed, streamer, settings, console, cancel) for streamed in files
        }
        while pending:
            _, pending = wait(pending, timeout=WAIT_SLICE_S, return_when=FIRST_COMPLETED)
    except KeyboardInterrupt:
        cancel.set()
        console.interrupted(run, settings.out_dir)
        raise ReportedInterrupt from None
    finally:
        pool.shutdown(wait=not cancel.is_set(), cancel_futures=True)
    return run


def _warn_about_channels(streamed: StreamedFile, options: RealtimeOptions, console: StreamConsole) -> None:
    channels = streamed.input.channels or 1
    if channels > 1 and options.channels == "mix":
        console.warn(
            streamed,
            f"{channels} channels mixed into one stream (--channels split gives each channel its own, "
            f"labelled {' / '.join(options.speakers)})",
        )
    elif channels == 1 and options.channels == "split":
        console.warn(streamed, "mono: nothing to split, streamed as one channel")
    elif channels > SPLIT_CHANNELS and options.channels == "split":
        console.warn(streamed, dropped_channels_text(channels, options.speakers))


@contextmanager
def open_endpoint(*, instant: bool = False) -> Iterator[Endpoint]:
    """The real service when a key is configured, else a local emulator for this run."""
    api_key = os.environ.get(API_KEY_ENV)
    if api_key:
        url = os.environ.get(WS_URL_ENV) or DEFAULT_WEBSOCKET_URL
        yield Endpoint(api_key=api_key, websocket_url=url, description=f"Streaming to DashScope at {url}")
        return
    from bucketscribe_local.dashscope_server import DashScopeEmulator

    if instant:
        from bucketscribe_local.speech import FixedSpeechEngine

        engine: Any = FixedSpeechEngine()
        what = "instant engine: a fixed text"
    else:
        from bucketscribe_local.whisper_engine import shared_engine

        engine, what = shared_engine(), "offline Whisper engine"
        # The model loads while the SDK is imported and the files decoded, not in the first pass.
        threading.Thread(target=engine.load, name="whisper-load", daemon=True).start()
    key = "sk-local-" + secrets.token_hex(8)
    emulator = DashScopeEmulator(api_keys=[key], engine=engine, interim_interval_s=LOCAL_INTERIM_INTERVAL_S)
    emulator.start()
    interrupted = False
    try:
        yield Endpoint(
            api_key=key,
            websocket_url=emulator.ws_url,
            description=f"No {API_KEY_ENV} set: streaming to a local DashScope emulator ({what}) "
            f"at {emulator.ws_url}",
        )
    except KeyboardInterrupt:
        interrupted = True  # the process leaves at once, the emulator with it: no slow stop
        raise
    finally:
        if not interrupted:
            emulator.stop()


def stream(args: argparse.Namespace, inputs: list[LocalInput], options: RealtimeOptions) -> int:
    """The ``stream`` sub-command, once its inputs and options are checked."""
    console = StreamConsole.for_terminal(json_events=args.json, quiet=args.quiet)
    settings = StreamSettings(options=options, out_dir=args.out, pace=args.pace, concurrency=args.concurrency)
    with open_endpoint(instant=args.instant) as endpoint:
        console.say(endpoint.description)
        run = stream_files(inputs, endpoint, settings, console)
    console.summary(run, args.out, options.translate)
    return run.exit_code

"""DashScope real-time recognition over WebSocket, on the real ``dashscope`` SDK: gummy (optionally
translating) and Paraformer real-time.

``RealtimeStreamer.stream(pcm, options)`` sends one 16 kHz mono PCM track as 100 ms frames through
its own SDK recognizer (``TranslationRecognizerRealtime`` for gummy, ``Recognition`` for
Paraformer) and returns a ``StreamedRecording``: the canonical transcript of the final sentences,
the task id and the delays the SDK measures (first package: first frame sent → first result;
last package: end of audio → end of task). While it streams, ``on_sentence`` hears every
interim hypothesis and final sentence as it arrives. ``pace="realtime"`` sends the audio at 1×
speed as a live source would; the default sends it as fast as the service takes it.
``stream_recording`` does the same for a decoded recording, each channel its own stream when the
options split them (a call: agent left, customer right), the sentences merged by time.

The API key and the WebSocket URL go to the SDK per call (``api_key=`` / ``base_address=``), so
no module-level ``dashscope`` state is touched and many streams run in threads at once.
``DashScopeRealtimeProvider`` is the pipeline's port over the same streamer.

``dashscope`` costs ~430 ms and ~70 MB to import, so it is imported on first use only.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Literal

from bucketscribe.domain.job import StreamMetrics
from bucketscribe.domain.media_routing import MediaRequirements
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import (
    Segment,
    Transcript,
    TranscriptWarning,
    TranslatedSegment,
    Translation,
    Word,
    languages_heard,
)
from bucketscribe.ports.media_tools import SPLIT_CHANNELS, SpeechPcm
from bucketscribe.ports.provider import STREAM_CUT_AT_DEADLINE, ProviderError, StreamedRecording
from bucketscribe.providers.dashscope.options import RealtimeOptions

if TYPE_CHECKING:
    from dashscope.audio.asr import RecognitionCallback, TranslationRecognizerCallback

PROVIDER_NAME = "dashscope-realtime"
# Where a profile that says ``longer_uploads: batch`` sends uploads too long to stream.
BATCH_PROVIDER = "dashscope"
DEFAULT_WEBSOCKET_URL = "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
SAMPLE_RATE = 16_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 16-bit mono
FRAME_MS = 100  # the docs recommend ~100 ms per binary frame
FRAME_BYTES = FRAME_MS * BYTES_PER_MS  # 3200
# How long after the SDK's worker stopped its last callback may still be running.
CALLBACK_GRACE_S = 5.0
# How many times a task the SDK says it could not create is started (see RealtimeStreamer._started).
START_ATTEMPTS = 3
# How often the wait for task-finished looks whether the stream was cancelled.
FINISH_POLL_S = 0.1
# The service fails a task that received no audio for this long (and the SDK stops by itself).
IDLE_LIMIT_S = 23
# Codes with which the service refuses what was asked (not a passing trouble): never retried.
REFUSAL_CODES = frozenset(
    {"InvalidParameter", "ModelNotFound", "InvalidApiKey", "AccessDenied", "Arrearage", "401", "403"}
)

# What the pipeline's media routing is told of the service's limits: none of its own (the
# worker's time budget is what bounds a stream, and the upload limits still apply).
UNLIMITED_BYTES = 2**40
UNLIMITED_MS = 10**10

Pace = Literal["fast", "realtime"]
ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(sent_ms, total_ms)`` after each frame is handed to the SDK."""


class RealtimeError(Exception):
    """A real-time task that did not finish: DashScope's error code and message, as it sent them."""

    def __init__(self, code: str, message: str, *, task_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.task_id = task_id

    @property
    def idle_timeout(self) -> bool:
        """The service closed the task because no audio arrived for 23 s (its idle rule)."""
        return self.code == "CLIENT_ERROR" and "timeout" in self.message.lower()

    @property
    def retryable(self) -> bool:
        return self.code not in REFUSAL_CODES

    @property
    def explanation(self) -> str:
        """The service's message, with what it means where its words are terse."""
        if self.idle_timeout:
            return (
                f"the service closed the stream after {IDLE_LIMIT_S} s without audio (its idle rule: "
                f"the sender stalled): {self.message}"
            )
        return self.message

    def describe(self) -> str:
        return f"{self.code}: {self.explanation}"


class StreamCancelled(Exception):
    """The caller asked the stream to stop (Ctrl-C); nothing was finished."""


@dataclass(frozen=True)
class Sentence:
    """One result as it arrived: an interim hypothesis (rewritten by later ones) or a final sentence."""

    sentence_id: int
    begin_ms: int
    end_ms: int
    text: str
    final: bool
    words: tuple[Word, ...] = ()
    translation: str | None = None
    translation_language: str | None = None
    speaker: str | None = None
    channel: int | None = None
    translation_only: bool = False
    """Gummy sent the translation on its own: ``text`` repeats the sentence already reported
    (a listener adds the translation to it rather than reporting the sentence again)."""


SentenceListener = Callable[[Sentence], None]


# ----- what the SDK hands its callbacks, copied into plain values -----------------------------------


def _ms(value: Any) -> int:
    return max(int(value or 0), 0)


def _word(text: Any, punctuation: Any, begin: Any, end: Any) -> Word | None:
    # The service (and the emulator) carry trailing punctuation apart from the word itself.
    joined = (str(text or "").strip() + str(punctuation or "").strip()) or str(text or "")
    if not joined.strip():
        return None
    start = _ms(begin)
    return Word(start_ms=start, end_ms=max(_ms(end), start), text=joined)


def _gummy_sentence(result: Any) -> tuple[int, int, int, str, tuple[Word, ...]]:
    words = []
    for item in result.words or []:
        raw = getattr(item, "_raw_data", None) or {}
        word = _word(item.text, raw.get("punctuation"), item.begin_time, item.end_time)
        if word is not None:
            words.append(word)
    begin = _ms(result.begin_time)
    return (
        int(result.sentence_id),
        begin,
        max(_ms(result.end_time), begin),
        str(result.text or ""),
        tuple(words),
    )


@dataclass
class _Collector:
    """Turns callbacks into ``Sentence`` values for the listener, keeps the final ones by id (a
    resent final replaces the earlier one), and records how the task ended."""

    target_language: str | None
    listener: SentenceListener | None = None
    speaker: str | None = None
    channel: int | None = None
    transcription: dict[int, Sentence] = field(default_factory=dict)
    translation: dict[int, Sentence] = field(default_factory=dict)
    translation_language: str | None = None
    error: RealtimeError | None = None
    heard_language: str | None = None
    """The language the service says it heard (the local emulator does; DashScope does not)."""
    completed: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _latest_text: dict[int, str] = field(default_factory=dict)

    def on_gummy(self, transcription: Any, translations: Any) -> None:
        translated = self._translated(translations)
        if transcription is None and translated is None:
            return
        source = transcription if transcription is not None else translated
        sentence_id, begin, end, text, words = _gummy_sentence(source)
        final = bool(source.is_sentence_end)
        if transcription is None:  # a translation on its own: the sentence's text came before
            text, words = self._latest_text.get(sentence_id, ""), ()
        sentence = Sentence(
            sentence_id=sentence_id,
            begin_ms=begin,
            end_ms=end,
            text=text.strip(),
            final=final,
            words=words,
            translation=str(translated.text or "").strip() if translated is not None else None,
            translation_language=str(translated.language or self.target_language)
            if translated is not None
            else None,
            translation_only=transcription is None,
        )
        with self._lock:
            if transcription is not None:
                self._latest_text[sentence_id] = text
                self._note_language(getattr(transcription, "_raw_data", None))
                if final:
                    self.transcription[sentence_id] = sentence
            if translated is not None and translated.is_sentence_end:
                self.translation[sentence_id] = sentence
                self.translation_language = sentence.translation_language
        self._tell(sentence)

    def _translated(self, translations: Any) -> Any:
        if translations is None or self.target_language is None:
            return None
        translated = translations.get_translation(self.target_language)
        if translated is None:
            languages = translations.get_language_list() or []
            translated = translations.get_translation(languages[0]) if len(languages) == 1 else None
        return translated

    def on_paraformer(self, result: Any) -> None:
        sentence = result.get_sentence()
        if not isinstance(sentence, dict) or sentence.get("heartbeat"):
            return
        words = tuple(
            w
            for item in sentence.get("words") or []
            if (
                w := _word(
                    item.get("text"), item.get("punctuation"), item.get("begin_time"), item.get("end_time")
                )
            )
        )
        begin = _ms(sentence.get("begin_time"))
        final = sentence.get("end_time") is not None  # how Recognition.is_sentence_end decides
        parsed = Sentence(
            sentence_id=int(sentence.get("sentence_id") or 0),
            begin_ms=begin,
            end_ms=max(_ms(sentence.get("end_time")), begin),
            text=str(sentence.get("text") or "").strip(),
            final=final,
            words=words,
        )
        with self._lock:
            self._note_language(sentence)
            if final:
                self.transcription[parsed.sentence_id] = parsed
        self._tell(parsed)

    def _note_language(self, raw: Any) -> None:
        if isinstance(raw, dict) and isinstance(raw.get("language"), str) and raw["language"]:
            self.heard_language = raw["language"]

    def _tell(self, sentence: Sentence) -> None:
        if self.listener is not None and (sentence.text or sentence.translation):
            self.listener(replace(sentence, speaker=self.speaker, channel=self.channel))

    def on_error(self, response: Any, task_id: str) -> None:
        code = str(getattr(response, "code", None) or getattr(response, "status_code", "") or "Unknown")
        message = str(getattr(response, "message", None) or "the real-time task failed")
        with self._lock:
            self.error = RealtimeError(code, message, task_id=task_id)
        self.completed.set()

    def transcript(self, model: str, language: str | None, total_ms: int) -> Transcript:
        segments = [
            Segment(
                start_ms=s.begin_ms,
                end_ms=s.end_ms,
                text=s.text,
                words=list(s.words),
                speaker=self.speaker,
                channel=self.channel,
            )
            for _, s in sorted(self.transcription.items())
            if s.text
        ]
        translations = []
        if self.target_language is not None:
            translations.append(
                Translation(
                    language=self.translation_language or self.target_language,
                    segments=[
                        TranslatedSegment(start_ms=s.begin_ms, end_ms=s.end_ms, text=s.translation or "")
                        for _, s in sorted(self.translation.items())
                        if s.translation
                    ],
                )
            )
        return Transcript(
            provider="dashscope",
            model=model,
            language=language or self.heard_language,
            duration_ms=total_ms,
            channels=1,
            segments=segments,
            translations=translations,
        )


def _gummy_callback(collector: _Collector, task_id: Callable[[], str]) -> TranslationRecognizerCallback:
    from dashscope.audio.asr import TranslationRecognizerCallback

    class Callback(TranslationRecognizerCallback):
        def on_event(
            self, request_id: Any, transcription_result: Any, translation_result: Any, usage: Any
        ) -> None:
            collector.on_gummy(transcription_result, translation_result)

        def on_complete(self) -> None:
            collector.completed.set()

        def on_error(self, message: Any) -> None:
            collector.on_error(message, task_id())

    return Callback()


def _paraformer_callback(collector: _Collector, task_id: Callable[[], str]) -> RecognitionCallback:
    from dashscope.audio.asr import RecognitionCallback

    class Callback(RecognitionCallback):
        def on_event(self, result: Any) -> None:
            collector.on_paraformer(result)

        def on_complete(self) -> None:
            collector.completed.set()

        def on_error(self, result: Any) -> None:
            collector.on_error(result, task_id())

    return Callback()


# ----- one stream ----------------------------------------------------------------------------------


def load_sdk() -> None:
    """Import the SDK now (~0.4 s, ~70 MB), before any stream's clock starts."""
    importlib.import_module("dashscope.audio.asr")


class RealtimeStreamer:
    """Streams PCM to DashScope real-time recognition; one SDK recognizer per ``stream`` call
    (thread-safe: many streams may run at once)."""

    def __init__(
        self,
        *,
        api_key: str,
        websocket_url: str = DEFAULT_WEBSOCKET_URL,
        workspace: str | None = None,
        finish_timeout_s: float = 300.0,
    ) -> None:
        self.api_key = api_key
        self.websocket_url = websocket_url
        self.workspace = workspace
        self.finish_timeout_s = finish_timeout_s

    def stream(
        self,
        audio_pcm16k: bytes,
        options: RealtimeOptions,
        *,
        pace: Pace = "fast",
        on_sentence: SentenceListener | None = None,
        on_progress: ProgressCallback | None = None,
        cancel: threading.Event | None = None,
        speaker: str | None = None,
        channel: int | None = None,
    ) -> StreamedRecording:
        """Recognise (and with gummy and ``options.translate``, translate) 16-bit 16 kHz mono PCM.

        Raises ``RealtimeError`` with DashScope's code and message when the task fails (code
        ``Timeout`` when the service does not finish within ``finish_timeout_s``), and
        ``StreamCancelled`` once ``cancel`` is set.
        """
        from dashscope.common.error import InvalidParameter

        if len(audio_pcm16k) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        cancel = cancel or threading.Event()
        collector, recognizer = self._started(options, on_sentence, speaker, channel)
        total_ms = len(audio_pcm16k) // BYTES_PER_MS
        started = time.monotonic()
        for index, offset in enumerate(range(0, len(audio_pcm16k), FRAME_BYTES)):
            if pace == "realtime":
                # An absolute schedule: a late frame does not push every later one back.
                cancel.wait(max(started + index * FRAME_MS / 1000 - time.monotonic(), 0.0))
            if collector.error is not None or cancel.is_set():
                break
            try:
                recognizer.send_audio_frame(audio_pcm16k[offset : offset + FRAME_BYTES])
            except InvalidParameter:
                break  # a task-failed stopped the SDK; its on_error carries the reason
            if on_progress is not None:
                on_progress(min((offset + FRAME_BYTES) // BYTES_PER_MS, total_ms), total_ms)
        if cancel.is_set():
            threading.Thread(target=_stop_quietly, args=(recognizer,), daemon=True).start()
            raise StreamCancelled
        self._finish(recognizer, collector, cancel)
        elapsed_ms = round((time.monotonic() - started) * 1000)
        if collector.error is not None:
            raise collector.error
        return StreamedRecording(
            transcript=collector.transcript(options.model, _language(options), total_ms),
            task_id=str(recognizer.get_last_request_id()),
            metrics=StreamMetrics(
                first_package_ms=_delay(recognizer.get_first_package_delay),
                last_package_ms=_delay(recognizer.get_last_package_delay),
                audio_ms=total_ms,
                elapsed_ms=elapsed_ms,
            ),
        )

    def _started(
        self,
        options: RealtimeOptions,
        on_sentence: SentenceListener | None,
        speaker: str | None,
        channel: int | None,
    ) -> tuple[_Collector, Any]:
        """A started recognizer and its collector.

        A worker that ends before ``start()`` looks at it (the connection refused at once) makes
        the SDK raise InvalidTask "task create failed"; no audio was sent, so a new recognizer
        starts again. (A worker that merely got to the service first cannot end the task without
        audio: see ``_gated``.)
        """
        from dashscope.common.error import InvalidTask

        attempt = 1
        while True:
            collector = _Collector(
                options.translate if options.gummy else None, on_sentence, speaker=speaker, channel=channel
            )
            recognizer = self._recognizer(options, collector)
            try:
                recognizer.start()
            except InvalidTask:
                if attempt == START_ATTEMPTS:
                    raise
                attempt += 1
                continue
            return collector, recognizer

    def _recognizer(self, options: RealtimeOptions, collector: _Collector) -> Any:
        from dashscope.audio.asr import Recognition, TranslationRecognizerRealtime

        recognizer: Any = None

        def task_id() -> str:
            return str(recognizer.get_last_request_id()) if recognizer is not None else ""

        # Forwarded by the SDK to its request builder: per-call key and endpoint, no globals.
        common: dict[str, Any] = {
            "model": options.model,
            "format": "pcm",
            "sample_rate": SAMPLE_RATE,
            "workspace": self.workspace,
            "api_key": self.api_key,
            "base_address": self.websocket_url,
        }
        if options.gummy:
            # The SDK annotates its optional arguments as plain ``str``; a dict keeps ``None`` honest.
            parameters: dict[str, Any] = {
                **common,
                "callback": _gummy_callback(collector, task_id),
                "transcription_enabled": True,
                "source_language": options.source_language,
                "translation_enabled": options.translate is not None,
            }
            if options.translate is not None:
                parameters["translation_target_languages"] = [options.translate]
            recognizer = _gated(TranslationRecognizerRealtime)(**parameters)
        else:
            parameters = {**common, "callback": _paraformer_callback(collector, task_id)}
            if options.source_language != "auto":
                parameters["language_hints"] = [options.source_language]
            recognizer = _gated(Recognition)(**parameters)
        return recognizer

    def _finish(self, recognizer: Any, collector: _Collector, cancel: threading.Event) -> None:
        """``stop()`` sends finish-task and blocks until task-finished; bound that wait, and end
        it when ``cancel`` is set (``StreamCancelled``)."""
        stopper = threading.Thread(target=_stop_quietly, args=(recognizer,), daemon=True)
        stopper.start()
        deadline = time.monotonic() + self.finish_timeout_s
        while stopper.is_alive() and not cancel.is_set() and (left := deadline - time.monotonic()) > 0:
            stopper.join(min(left, FINISH_POLL_S))
        if cancel.is_set() and stopper.is_alive():
            raise StreamCancelled
        # After a task-failed, stop() returns at once but on_error may still be on its way.
        collector.completed.wait(0.0 if stopper.is_alive() else CALLBACK_GRACE_S)
        if collector.error is not None or collector.completed.is_set():
            return
        reason = (
            f"no task-finished within {self.finish_timeout_s:g} s of finish-task"
            if stopper.is_alive()
            else "the connection ended without task-finished or task-failed"
        )
        raise RealtimeError("Timeout", reason, task_id=str(recognizer.get_last_request_id()))


@functools.cache
def _gated(sdk_recognizer: type) -> type:
    """The SDK's recognizer class, its audio held back until ``start()`` has returned.

    The SDK (dashscope 2.0.2) starts its worker thread before it marks the recognizer running.
    A worker that gets to the service first (the caller's thread without CPU for a moment, on a
    loaded machine) reads "not running" as "stopped": it sends finish-task without audio and the
    task ends with no sentence while the caller, its ``start()`` returned, sends every frame into
    a queue nobody reads. The file would be DONE with an empty transcript. Here the worker's
    audio generator first waits for ``start()`` to be over (a few microseconds, or as long as
    the starved caller takes).
    """

    class Gated(sdk_recognizer):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._start_returned = threading.Event()

        def start(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().start(*args, **kwargs)
            finally:
                self._start_returned.set()

        def _input_stream_cycle(self) -> Iterator[bytes]:
            self._start_returned.wait()
            yield from super()._input_stream_cycle()

    Gated.__name__ = Gated.__qualname__ = f"Gated{sdk_recognizer.__name__}"
    return Gated


def _language(options: RealtimeOptions) -> str | None:
    return None if options.source_language == "auto" else options.source_language


def _delay(measure: Callable[[], Any]) -> int | None:
    """The SDK's delay, or None when one of its two moments never happened (-1 stamps)."""
    value = measure()
    return round(value) if value is not None and value >= 0 and value < 1e12 else None


def _stop_quietly(recognizer: Any) -> None:
    from dashscope.common.error import InvalidParameter

    # Already stopped when a task-failed raced the last frame; on_error recorded why.
    with contextlib.suppress(InvalidParameter):
        recognizer.stop()


# ----- a recording: one stream, or one per channel -----------------------------------------------


StreamDone = Callable[[StreamedRecording, str | None], None]
"""Called as ``on_stream_done(recording, speaker)`` when each channel's stream ends."""


def stream_recording(
    streamer: RealtimeStreamer,
    speech: SpeechPcm,
    options: RealtimeOptions,
    *,
    pace: Pace = "fast",
    on_sentence: SentenceListener | None = None,
    on_progress: ProgressCallback | None = None,
    on_stream_done: StreamDone | None = None,
    cancel: threading.Event | None = None,
) -> StreamedRecording:
    """Stream a decoded recording: its one track, or each channel at once on a stream of its own
    (labelled with the options' speakers), merged by time. The first failure ends it."""
    if len(speech.tracks) == 1:
        result = streamer.stream(
            speech.tracks[0],
            options,
            pace=pace,
            on_sentence=on_sentence,
            on_progress=on_progress,
            cancel=cancel,
        )
        if on_stream_done is not None:
            on_stream_done(result, None)
        return result
    cancel = cancel or threading.Event()
    speakers = _speakers(options.speakers, len(speech.tracks))

    def one(channel: int) -> StreamedRecording:
        try:
            result = streamer.stream(
                speech.tracks[channel],
                options,
                pace=pace,
                on_sentence=on_sentence,
                on_progress=on_progress if channel == 0 else None,
                cancel=cancel,
                speaker=speakers[channel],
                channel=channel,
            )
        except BaseException:
            cancel.set()  # one channel failed: the other stops too
            raise
        if on_stream_done is not None:
            on_stream_done(result, speakers[channel])
        return result

    with ThreadPoolExecutor(max_workers=len(speech.tracks), thread_name_prefix="channel") as pool:
        futures = [pool.submit(one, channel) for channel in range(len(speech.tracks))]
        errors = [f.exception() for f in futures]
    failure = next((e for e in errors if e is not None and not isinstance(e, StreamCancelled)), None)
    if failure is None:
        failure = next((e for e in errors if e is not None), None)
    if failure is not None:
        raise failure
    merged = merge_channels([f.result() for f in futures], speakers)
    return _warned_of_dropped_channels(merged, speech, speakers) if speech.dropped_channels else merged


def _warned_of_dropped_channels(
    merged: StreamedRecording, speech: SpeechPcm, speakers: Sequence[str]
) -> StreamedRecording:
    """The recording with a transcript warning that the split left channels out (copies: the
    channels' own results, already handed to ``on_stream_done``, stay as they were)."""
    warning = TranscriptWarning(
        code="CHANNELS_NOT_TRANSCRIBED", message=dropped_channels_text(speech.source_channels, speakers)
    )
    transcript = merged.transcript
    return merged.model_copy(
        update={"transcript": transcript.model_copy(update={"warnings": [*transcript.warnings, warning]})}
    )


def dropped_channels_text(channels: int, speakers: Sequence[str]) -> str:
    """What a split of a recording with more than ``SPLIT_CHANNELS`` channels leaves out, in words."""
    first_left_out = SPLIT_CHANNELS + 1
    dropped = (
        f"channel {first_left_out} is"
        if channels == first_left_out
        else f"channels {first_left_out}-{channels} are"
    )
    return (
        f"{channels} channels: a split streams only the first {SPLIT_CHANNELS} "
        f"({' / '.join(speakers[:SPLIT_CHANNELS])}), so {dropped} not transcribed; "
        "mix the channels into one stream for a recording that is not a two-sided call"
    )


def _speakers(names: Sequence[str], count: int) -> list[str]:
    return [names[i] if i < len(names) else f"Channel {i + 1}" for i in range(count)]


def merge_channels(results: list[StreamedRecording], speakers: list[str]) -> StreamedRecording:
    """One transcript of several channels' streams: segments and translations merged by time."""
    transcripts = [r.transcript for r in results]
    segments = sorted(
        (s for t in transcripts for s in t.segments), key=lambda s: (s.start_ms, s.channel or 0)
    )
    languages = sorted({tr.language for t in transcripts for tr in t.translations})
    translations = [
        Translation(
            language=language,
            segments=sorted(
                (
                    s
                    for t in transcripts
                    for tr in t.translations
                    if tr.language == language
                    for s in tr.segments
                ),
                key=lambda s: s.start_ms,
            ),
        )
        for language in languages
    ]
    first = [r.metrics.first_package_ms for r in results if r.metrics.first_package_ms is not None]
    last = [r.metrics.last_package_ms for r in results if r.metrics.last_package_ms is not None]
    language, differ = languages_heard({str(i): t.language for i, t in enumerate(transcripts) if t.language})
    return StreamedRecording(
        transcript=transcripts[0].model_copy(
            update={
                "channels": len(results),
                "speakers": speakers,
                "segments": segments,
                "translations": translations,
                "duration_ms": max(t.duration_ms or 0 for t in transcripts),
                "language": language,
                "warnings": [*transcripts[0].warnings, *differ],
            }
        ),
        task_id="+".join(r.task_id for r in results),
        metrics=StreamMetrics(
            first_package_ms=min(first) if first else None,
            last_package_ms=max(last) if last else None,
            audio_ms=max(r.metrics.audio_ms for r in results),
            elapsed_ms=max(r.metrics.elapsed_ms for r in results),
        ),
    )


# ----- the pipeline's port -----------------------------------------------------------------------


class DashScopeRealtimeProvider:
    """``dashscope-realtime`` for the pipeline, a ``StreamingProvider``: the submit worker streams
    the upload itself. A stream leaves nothing at the service to look up later (no task to fetch,
    no listing, no callback), so an attempt whose worker stopped mid-stream can only be streamed
    again (see ``pipeline/steps/stream.py``).
    """

    name = PROVIDER_NAME

    def __init__(self, streamer: RealtimeStreamer) -> None:
        self.streamer = streamer

    def model_name(self, profile: Profile) -> str:
        return RealtimeOptions.of(profile).model

    def splits_channels(self, profile: Profile) -> bool:
        return RealtimeOptions.of(profile).channels == "split"

    def longer_uploads_to(self, profile: Profile) -> str | None:
        return BATCH_PROVIDER if RealtimeOptions.of(profile).longer_uploads == "batch" else None

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        """The worker decodes the upload itself (``pipeline/steps/stream.py``), so routing passes
        it as it is; how long it may be is the worker's time budget, checked there, so that a long
        upload is refused or sent to file transcription rather than cut into parts."""
        options = RealtimeOptions.of(profile)
        return MediaRequirements(
            provider=self.name,
            profile=profile.name,
            decodes=None,
            takes_video=True,
            max_bytes=UNLIMITED_BYTES,
            max_duration_ms=UNLIMITED_MS,
            channels_needed=options.channels_needed,
            channels_wanted=options.channel_expectation(),
        )

    def stream(self, speech: SpeechPcm, profile: Profile, *, within: timedelta) -> StreamedRecording:
        cancel = threading.Event()
        # Cut at ``within``: a stream that outlived its run (or its lease) would be streamed again
        # by another worker while this one still pays for it.
        timer = threading.Timer(within.total_seconds(), cancel.set)
        timer.daemon = True
        timer.start()
        try:
            return stream_recording(self.streamer, speech, RealtimeOptions.of(profile), cancel=cancel)
        except RealtimeError as error:
            raise ProviderError(error.code, error.explanation, retryable=error.retryable) from error
        except StreamCancelled as cut:
            raise ProviderError(
                STREAM_CUT_AT_DEADLINE,
                f"the stream had not ended after {within.total_seconds():g} s, all the time this run "
                "had for it: cut, to be streamed again with the whole budget",
                retryable=True,
            ) from cut
        finally:
            timer.cancel()

"""DashScope real-time transcription + translation (gummy) over WebSocket, on the real ``dashscope`` SDK.

``RealtimeTranslator.stream(pcm)`` sends a whole recording as 100 ms PCM frames through its own
``TranslationRecognizerRealtime`` and returns one canonical ``Transcript`` built from the final
sentences only (interim results are rewritten by later ones, so they are dropped). The API key and
the WebSocket URL go to the SDK per call (``api_key=`` / ``base_address=``, which its ``BaseApi.call``
forwards to the request builder), so no module-level ``dashscope`` state is touched and many streams
can run in threads at once, each against any endpoint.

``dashscope`` costs ~430 ms to import, so it is imported on first use only.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bucketscribe.model import Segment, Transcript, TranslatedSegment, Translation, Word

if TYPE_CHECKING:
    from dashscope.audio.asr import TranslationRecognizerCallback

DEFAULT_MODEL = "gummy-realtime-v1"
DEFAULT_WEBSOCKET_URL = "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
SAMPLE_RATE = 16_000
BYTES_PER_MS = SAMPLE_RATE * 2 // 1000  # 16-bit mono
FRAME_MS = 100  # the docs recommend ~100 ms per binary frame
FRAME_BYTES = FRAME_MS * BYTES_PER_MS  # 3200
# How long after the SDK's worker stopped its last callback may still be running.
CALLBACK_GRACE_S = 5.0

ProgressCallback = Callable[[int, int], None]
"""Called as ``on_progress(sent_ms, total_ms)`` after each frame is handed to the SDK."""


class RealtimeError(Exception):
    """A real-time task that did not finish: DashScope's error code and message, as it sent them."""

    def __init__(self, code: str, message: str, *, task_id: str | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.task_id = task_id


class _Sentence:
    """One final sentence (transcription or translation) copied out of the SDK's objects."""

    __slots__ = ("begin_ms", "end_ms", "text", "words")

    def __init__(self, result: Any) -> None:
        self.begin_ms = _ms(result.begin_time)
        self.end_ms = max(_ms(result.end_time), self.begin_ms)
        self.text = str(result.text or "")
        self.words = [_word(w) for w in result.words or [] if str(w.text or "").strip()]


def _ms(value: Any) -> int:
    return max(int(value or 0), 0)


def _word(word: Any) -> Word:
    raw = getattr(word, "_raw_data", None) or {}
    # The emulator (and paraformer) carry trailing punctuation apart from the word itself.
    text = (str(word.text).strip() + str(raw.get("punctuation") or "").strip()) or str(word.text)
    start = _ms(word.begin_time)
    return Word(start_ms=start, end_ms=max(_ms(word.end_time), start), text=text)


class _Collector:
    """Gathers final sentences by id (a resent final replaces the earlier one) and the outcome."""

    def __init__(self, target_language: str | None) -> None:
        self.target_language = target_language
        self.transcription: dict[int, _Sentence] = {}
        self.translation: dict[int, _Sentence] = {}
        self.translation_language: str | None = None
        self.error: RealtimeError | None = None
        self.completed = threading.Event()
        self._lock = threading.Lock()

    def on_event(self, transcription: Any, translations: Any) -> None:
        with self._lock:
            if transcription is not None and transcription.is_sentence_end:
                self.transcription[int(transcription.sentence_id)] = _Sentence(transcription)
            if translations is None or self.target_language is None:
                return
            translated = translations.get_translation(self.target_language)
            if translated is None:
                languages = translations.get_language_list() or []
                translated = translations.get_translation(languages[0]) if len(languages) == 1 else None
            if translated is not None and translated.is_sentence_end:
                self.translation[int(translated.sentence_id)] = _Sentence(translated)
                self.translation_language = str(translated.language or self.target_language)

    def on_error(self, response: Any, task_id: str) -> None:
        code = str(getattr(response, "code", None) or getattr(response, "status_code", "") or "Unknown")
        message = str(getattr(response, "message", None) or "the real-time task failed")
        with self._lock:
            self.error = RealtimeError(code, message, task_id=task_id)
        self.completed.set()


def _callback(collector: _Collector, task_id: Callable[[], str]) -> TranslationRecognizerCallback:
    from dashscope.audio.asr import TranslationRecognizerCallback

    class Callback(TranslationRecognizerCallback):
        def on_event(
            self, request_id: Any, transcription_result: Any, translation_result: Any, usage: Any
        ) -> None:
            collector.on_event(transcription_result, translation_result)

        def on_complete(self) -> None:
            collector.completed.set()

        def on_error(self, message: Any) -> None:
            collector.on_error(message, task_id())

    return Callback()


class RealtimeTranslator:
    """Streams recordings to DashScope gummy; one SDK recognizer per ``stream`` call (thread-safe)."""

    def __init__(
        self,
        *,
        api_key: str,
        websocket_url: str = DEFAULT_WEBSOCKET_URL,
        model: str = DEFAULT_MODEL,
        workspace: str | None = None,
        finish_timeout_s: float = 300.0,
    ) -> None:
        self.api_key = api_key
        self.websocket_url = websocket_url
        self.model = model
        self.workspace = workspace
        self.finish_timeout_s = finish_timeout_s

    def stream(
        self,
        audio_pcm16k: bytes,
        *,
        source_language: str | None = "auto",
        target_language: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Transcript:
        """Recognise (and translate into ``target_language``) 16-bit 16 kHz mono PCM.

        Raises ``RealtimeError`` with DashScope's code and message when the task fails (or with
        code ``Timeout`` when the service does not finish within ``finish_timeout_s``).
        """
        from dashscope.audio.asr import TranslationRecognizerRealtime
        from dashscope.common.error import InvalidParameter

        if len(audio_pcm16k) % 2:
            raise ValueError("16-bit PCM must have an even number of bytes")
        collector = _Collector(target_language)
        recognizer: Any = None

        def task_id() -> str:
            return str(recognizer.get_last_request_id()) if recognizer is not None else ""

        # The SDK annotates its optional arguments as plain ``str``; a dict keeps ``None`` honest.
        parameters: dict[str, Any] = {
            "model": self.model,
            "callback": _callback(collector, task_id),
            "format": "pcm",
            "sample_rate": SAMPLE_RATE,
            "transcription_enabled": True,
            "source_language": source_language,
            "translation_enabled": target_language is not None,
            "workspace": self.workspace,
            # Forwarded by the SDK to its request builder: per-call key and endpoint, no globals.
            "api_key": self.api_key,
            "base_address": self.websocket_url,
        }
        if target_language is not None:
            parameters["translation_target_languages"] = [target_language]
        recognizer = TranslationRecognizerRealtime(**parameters)
        recognizer.start()
        total_ms = len(audio_pcm16k) // BYTES_PER_MS
        for offset in range(0, len(audio_pcm16k), FRAME_BYTES):
            if collector.error is not None:
                break
            try:
                recognizer.send_audio_frame(audio_pcm16k[offset : offset + FRAME_BYTES])
            except InvalidParameter:
                break  # a task-failed stopped the SDK; its on_error carries the reason
            if on_progress is not None:
                on_progress(min((offset + FRAME_BYTES) // BYTES_PER_MS, total_ms), total_ms)
        self._finish(recognizer, collector)
        if collector.error is not None:
            raise collector.error
        return self._transcript(collector, source_language, total_ms)

    def _finish(self, recognizer: Any, collector: _Collector) -> None:
        """``stop()`` sends finish-task and blocks until task-finished; bound that wait."""
        stopper = threading.Thread(target=_stop_quietly, args=(recognizer,), daemon=True)
        stopper.start()
        stopper.join(self.finish_timeout_s)
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

    def _transcript(self, collector: _Collector, source_language: str | None, total_ms: int) -> Transcript:
        segments = [
            Segment(start_ms=s.begin_ms, end_ms=s.end_ms, text=s.text.strip(), words=s.words)
            for _, s in sorted(collector.transcription.items())
            if s.text.strip()
        ]
        translations: list[Translation] = []
        if collector.target_language is not None:
            translations.append(
                Translation(
                    language=collector.translation_language or collector.target_language,
                    segments=[
                        TranslatedSegment(start_ms=s.begin_ms, end_ms=s.end_ms, text=s.text.strip())
                        for _, s in sorted(collector.translation.items())
                        if s.text.strip()
                    ],
                )
            )
        return Transcript(
            provider="dashscope",
            model=self.model,
            language=None if source_language in (None, "auto") else source_language,
            duration_ms=total_ms,
            channels=1,
            segments=segments,
            translations=translations,
        )


def _stop_quietly(recognizer: Any) -> None:
    from dashscope.common.error import InvalidParameter

    # Already stopped when a task-failed raced the last frame; on_error recorded why.
    with contextlib.suppress(InvalidParameter):
        recognizer.stop()

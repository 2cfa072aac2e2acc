"""One real-time WebSocket task (gummy or realtime Paraformer): the audio received so far, which
sentences are already final, and the engine passes that turn audio into sentences."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bucketscribe.local.dashscope_server.errors import DashScopeError, describe_validation_error
from bucketscribe.local.dashscope_server.requests import (
    GUMMY_MODELS,
    PARAFORMER_REALTIME_MODELS,
    SUPPORTED_TRANSLATION_TARGETS,
    RealtimeParameters,
    single_language_hint,
)
from bucketscribe.local.dashscope_server.wire_formats import split_punctuation
from bucketscribe.local.emulator_kit.audio import parse_wav_header, wav_file
from bucketscribe.local.speech import RecognizedSegment, RecognizedWord, SpeechEngine


@dataclass(frozen=True)
class StreamWord:
    begin_ms: int
    end_ms: int
    text: str
    punctuation: str


@dataclass(frozen=True)
class StreamSentence:
    """One result-generated event's worth of text, for the transcription or one translation."""

    sentence_id: int
    begin_ms: int
    end_ms: int
    text: str
    words: tuple[StreamWord, ...]
    final: bool
    translation: StreamSentence | None = None
    language: str | None = None


@dataclass(frozen=True)
class StreamSnapshot:
    """The audio one engine pass works on, taken on the event loop before the pass runs."""

    audio: bytes
    window_start_ms: int
    received_ms: int | None
    final: bool


class RealtimeStream:
    """One WebSocket task: buffers audio and turns it into interim and final sentences.

    PCM (and 16-bit mono WAV) is sliceable, so passes only re-recognise the audio after the last
    final sentence and interim results come every ``interim_interval_s`` of audio. Other formats
    cannot be cut without decoding, so they get one pass when the client finishes.
    """

    # A sentence counts as finished once it ended this long before the newest audio.
    STABLE_MARGIN_MS = 500
    # Past this much unsettled audio everything heard is made final, so a pass never re-reads
    # more than this (an engine that never splits a monologue would otherwise cost O(n²)).
    MAX_OPEN_WINDOW_MS = 20_000

    def __init__(
        self,
        *,
        task_id: str,
        model: str,
        parameters: RealtimeParameters,
        engine: SpeechEngine,
        interim_interval_s: float,
    ) -> None:
        self.task_id = task_id
        self.model = model
        self.parameters = parameters
        self.engine = engine
        self.is_gummy = model in GUMMY_MODELS
        self.single_sentence = model == "gummy-chat-v1"
        self.interim_interval_ms = max(int(interim_interval_s * 1000), 1)
        self.sample_rate = parameters.sample_rate
        self._raw = bytearray()
        self._pcm = bytearray()
        self._sliceable = parameters.format in ("pcm", "wav")
        self._wav_layout_known = parameters.format == "pcm"
        self._finalized_until_ms = 0
        self._last_pass_received_ms = 0
        self._next_sentence_id = 0 if self.is_gummy else 1
        self._finals_emitted = 0
        self.bytes_received = 0

    @property
    def translation_language(self) -> str | None:
        if (
            self.is_gummy
            and self.parameters.translation_enabled
            and self.parameters.translation_target_languages
        ):
            return self.parameters.translation_target_languages[0]
        return None

    @property
    def language(self) -> str | None:
        source = self.parameters.source_language
        if source and source != "auto":
            return source
        return single_language_hint(self.parameters.language_hints)

    def append(self, chunk: bytes) -> None:
        self.bytes_received += len(chunk)
        if not self._sliceable:
            self._raw.extend(chunk)
            return
        if self._wav_layout_known:
            self._pcm.extend(chunk)
            return
        self._raw.extend(chunk)
        layout = parse_wav_header(bytes(self._raw[:65536]))
        if layout is None:
            if len(self._raw) > 65536:  # no header after 64 KiB: hand it over whole at the end
                self._sliceable = False
            return
        if layout.audio_format != 1 or layout.sample_width != 2 or layout.channels != 1:
            self._sliceable = False
            return
        self.sample_rate = layout.sample_rate
        self._wav_layout_known = True
        self._pcm.extend(self._raw[layout.data_offset :])
        self._raw.clear()

    @property
    def received_ms(self) -> int | None:
        if not (self._sliceable and self._wav_layout_known):
            return None
        return int(len(self._pcm) // 2 * 1000 / self.sample_rate)

    def interim_due(self) -> bool:
        received = self.received_ms
        if received is None:
            return False
        if self.single_sentence and self._finals_emitted:
            return False
        return received - self._last_pass_received_ms >= self.interim_interval_ms

    def snapshot(self, *, final: bool) -> StreamSnapshot | None:
        """Take the audio for the next pass (None when there is nothing left to recognise)."""
        if self.single_sentence and self._finals_emitted:
            return None
        received = self.received_ms
        if received is None:
            if not final:
                return None
            audio = bytes(self._raw)
            if not audio:
                return None
            return StreamSnapshot(audio=audio, window_start_ms=0, received_ms=None, final=True)
        self._last_pass_received_ms = received
        start_byte = int(self._finalized_until_ms * self.sample_rate / 1000) * 2
        window = bytes(self._pcm[start_byte:])
        if len(window) < 2 * self.sample_rate // 100:  # under 10 ms: nothing to hear
            return None
        return StreamSnapshot(
            audio=wav_file(window, sample_rate=self.sample_rate),
            window_start_ms=self._finalized_until_ms,
            received_ms=received,
            final=final,
        )

    def recognize(self, snapshot: StreamSnapshot) -> list[StreamSentence]:
        """Run the engine on a snapshot (blocking; call it off the event loop, one at a time).

        Raises ``UnreadableAudio`` when the bytes do not decode.
        """
        offset = snapshot.window_start_ms
        limit = snapshot.received_ms
        base = self.engine.recognize(snapshot.audio, language=self.language, word_timestamps=True)
        segments = [_shift(s, offset, limit) for s in base.segments if s.text.strip()]
        translated: list[RecognizedSegment] = []
        target = self.translation_language
        if target is not None:
            english = self.engine.recognize(
                snapshot.audio, language=self.language, translate=True, word_timestamps=True
            )
            translated = [_shift(s, offset, limit) for s in english.segments if s.text.strip()]
        if not segments and translated:  # transcription found nothing but translation did
            segments = translated
        sentences: list[StreamSentence] = []
        open_segments: list[RecognizedSegment] = []
        next_id = self._next_sentence_id
        window_full = limit is not None and limit - offset >= self.MAX_OPEN_WINDOW_MS
        for index, segment in enumerate(segments):
            settled = (
                snapshot.final
                or limit is None
                or window_full
                or (index < len(segments) - 1 and segment.end_ms <= limit - self.STABLE_MARGIN_MS)
            )
            if open_segments or not settled:
                open_segments.append(segment)
                continue
            if self.single_sentence and (self._finals_emitted or sentences):
                break
            sentences.append(_build_sentence(next_id, [segment], final=True))
            next_id += 1
        if open_segments and not (self.single_sentence and sentences):
            sentences.append(_build_sentence(next_id, open_segments, final=False))
        if target is not None:
            sentences = _attach_translations(sentences, translated, target)
        finals = [s for s in sentences if s.final]
        self._next_sentence_id = next_id
        self._finals_emitted += len(finals)
        if finals:
            self._finalized_until_ms = max(self._finalized_until_ms, finals[-1].end_ms)
        return sentences


def open_stream(
    task_id: str, payload: Any, *, engine: SpeechEngine, interim_interval_s: float
) -> RealtimeStream:
    """Validate a ``run-task`` payload; a DashScopeError carries the task-failed code and message."""
    if not isinstance(payload, dict):
        raise DashScopeError(400, "InvalidParameter", "run-task payload must be a JSON object.")
    model = payload.get("model")
    if model not in GUMMY_MODELS and model not in PARAFORMER_REALTIME_MODELS:
        raise DashScopeError(400, "ModelNotFound", f"Model not found ({model})!")
    try:
        parameters = RealtimeParameters.model_validate(payload.get("parameters") or {})
    except ValidationError as error:
        raise DashScopeError(400, "InvalidParameter", describe_validation_error(error)) from error
    if model in GUMMY_MODELS and parameters.translation_enabled:
        targets = parameters.translation_target_languages or []
        if len(targets) != 1:
            raise DashScopeError(
                400, "InvalidParameter", "translation_target_languages must name exactly one language."
            )
        if targets[0] not in SUPPORTED_TRANSLATION_TARGETS:
            raise DashScopeError(
                400,
                "InvalidParameter",
                f"Translation target {targets[0]!r} is not supported by this emulator (only 'en').",
            )
    if model in GUMMY_MODELS and not (parameters.transcription_enabled or parameters.translation_enabled):
        raise DashScopeError(
            400, "InvalidParameter", "Enable transcription_enabled or translation_enabled (or both)."
        )
    return RealtimeStream(
        task_id=task_id,
        model=model,
        parameters=parameters,
        engine=engine,
        interim_interval_s=interim_interval_s,
    )


def _build_sentence(
    sentence_id: int, segments: Sequence[RecognizedSegment], *, final: bool, language: str | None = None
) -> StreamSentence:
    words = tuple(
        StreamWord(w.start_ms, w.end_ms, *split_punctuation(w.text))
        for segment in segments
        for w in segment.words
        if w.text.strip()
    )
    return StreamSentence(
        sentence_id=sentence_id,
        begin_ms=segments[0].start_ms if segments else 0,
        end_ms=segments[-1].end_ms if segments else 0,
        text=" ".join(s.text.strip() for s in segments if s.text.strip()),
        words=words,
        final=final,
        language=language,
    )


def _shift(segment: RecognizedSegment, offset_ms: int, limit_ms: int | None) -> RecognizedSegment:
    """Move window-relative times to stream time, never past the audio received."""

    def at(ms: int) -> int:
        moved = ms + offset_ms
        return moved if limit_ms is None else min(moved, max(limit_ms, offset_ms))

    return RecognizedSegment(
        start_ms=at(segment.start_ms),
        end_ms=max(at(segment.end_ms), at(segment.start_ms)),
        text=segment.text,
        words=[
            RecognizedWord(start_ms=at(w.start_ms), end_ms=max(at(w.end_ms), at(w.start_ms)), text=w.text)
            for w in segment.words
        ],
    )


def _attach_translations(
    sentences: list[StreamSentence], translated: list[RecognizedSegment], language: str
) -> list[StreamSentence]:
    """Give each sentence the translated segments that overlap it most (nearest when none overlap)."""
    assigned: list[list[RecognizedSegment]] = [[] for _ in sentences]
    if sentences:
        for segment in translated:
            best = max(
                range(len(sentences)),
                key=lambda i: (
                    _overlap(sentences[i], segment),
                    -abs((sentences[i].begin_ms + sentences[i].end_ms) - (segment.start_ms + segment.end_ms)),
                ),
            )
            assigned[best].append(segment)
    result = []
    for sentence, segments in zip(sentences, assigned, strict=True):
        translation = _build_sentence(sentence.sentence_id, segments, final=sentence.final, language=language)
        if not segments:
            translation = StreamSentence(
                sentence_id=sentence.sentence_id,
                begin_ms=sentence.begin_ms,
                end_ms=sentence.end_ms,
                text="",
                words=(),
                final=sentence.final,
                language=language,
            )
        result.append(
            StreamSentence(
                sentence_id=sentence.sentence_id,
                begin_ms=sentence.begin_ms,
                end_ms=sentence.end_ms,
                text=sentence.text,
                words=sentence.words,
                final=sentence.final,
                translation=translation,
            )
        )
    return result


def _overlap(sentence: StreamSentence, segment: RecognizedSegment) -> int:
    return max(0, min(sentence.end_ms, segment.end_ms) - max(sentence.begin_ms, segment.start_ms))

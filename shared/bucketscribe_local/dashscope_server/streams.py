"""One real-time WebSocket task (gummy or realtime Paraformer): the audio received so far, the
utterances voice activity has cut from it, the recognition passes asked of the stream decoder
(``local.stream_decoding``) and the sentences made of their results.

The stream's language is given (``source_language``, a single ``language_hints`` entry) or
decided once, by the pass that first needs it, from all the speech the stream has sent by then
(never from one fragment); every later pass runs with it. A final pass's sentences are its
segments; a translation into the language the speech is in is the transcript itself (the same
text, not a second reading that could disagree), into another one the reading of the same
utterance in the same batch.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from bucketscribe_local.dashscope_server.errors import DashScopeError, describe_validation_error
from bucketscribe_local.dashscope_server.requests import (
    DEFAULT_END_SILENCE_MS,
    END_SILENCE_RANGE_MS,
    GUMMY_MODELS,
    GUMMY_SOURCE_LANGUAGES,
    PARAFORMER_REALTIME_MODELS,
    PARAFORMER_V2_LANGUAGES,
    SUPPORTED_TRANSLATION_TARGETS,
    RealtimeParameters,
    single_language_hint,
)
from bucketscribe_local.dashscope_server.wire_formats import split_punctuation
from bucketscribe_local.emulator_kit.audio import PCM_FORMAT_TAG, parse_wav_header
from bucketscribe_local.emulator_kit.voice_activity import Utterance, VoiceActivity
from bucketscribe_local.speech import RecognizedSegment
from bucketscribe_local.stream_decoding import PassResult, StreamDecoder, StreamPass

logger = logging.getLogger(__name__)


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


class RealtimeStream:
    """One WebSocket task: buffers audio, cuts it into utterances and turns them into sentences.

    PCM (and 16-bit mono WAV) is cut by voice activity as it arrives: each utterance gets a final
    pass as soon as the speaker pauses, and a long one interim passes every
    ``interim_interval_s`` of its audio. Other formats cannot be cut without decoding, so they get
    one final pass when the client finishes. A stream asks for one pass at a time, finals first.
    """

    def __init__(
        self,
        *,
        task_id: str,
        model: str,
        parameters: RealtimeParameters,
        decoder: StreamDecoder,
        interim_interval_s: float,
    ) -> None:
        self.task_id = task_id
        self.model = model
        self.parameters = parameters
        self.decoder = decoder
        self.is_gummy = model in GUMMY_MODELS
        self.single_sentence = model == "gummy-chat-v1"
        self.interim_interval_ms = max(int(interim_interval_s * 1000), 1)
        self.sample_rate = parameters.sample_rate
        self._raw = bytearray()
        self._pcm = bytearray()
        self._sliceable = parameters.format in ("pcm", "wav")
        self._wav_layout_known = parameters.format == "pcm"
        self._voice = VoiceActivity(self.sample_rate, end_silence_ms=end_silence_ms(model, parameters))
        self._ended: deque[Utterance] = deque()  # utterances waiting for their final pass
        self._interim_start_ms: int | None = None  # the utterance the last interim pass was of ...
        self._interim_length_ms = 0  # ... and how much of it that pass heard
        self._input_closed = False
        self._next_sentence_id = 0 if self.is_gummy else 1
        self._finals_emitted = 0
        self.bytes_received = 0
        asked = self.requested_language or decoder.default_language
        self._language = decoder.known_language(asked) if asked else None
        if asked and self._language is None:
            logger.warning(
                "the engine does not know language %r; the stream's language is decided instead", asked
            )
        self._language_decided = self._language is not None
        self._heard = bytearray()  # the speech of the ended utterances, for the language decision
        self._results = 0  # passes that heard something (the first result is never held back)

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
    def requested_language(self) -> str | None:
        source = self.parameters.source_language
        if source and source != "auto":
            return source
        return single_language_hint(self.parameters.language_hints)

    @property
    def language(self) -> str | None:
        """The stream's language as the engine knows it: given, or decided (None until then)."""
        return self._language

    @property
    def input_closed(self) -> bool:
        return self._input_closed

    def append(self, chunk: bytes) -> None:
        self.bytes_received += len(chunk)
        if not self._sliceable:
            self._raw.extend(chunk)
            return
        if self._wav_layout_known:
            self._pcm.extend(chunk)
            self._ended.extend(self._voice.scan(self._pcm))
            return
        self._raw.extend(chunk)
        layout = parse_wav_header(bytes(self._raw[:65536]))
        if layout is None:
            if len(self._raw) > 65536:  # no header after 64 KiB: hand it over whole at the end
                self._sliceable = False
            return
        if layout.audio_format != PCM_FORMAT_TAG or layout.sample_width != 2 or layout.channels != 1:
            self._sliceable = False
            return
        if layout.sample_rate != self.sample_rate:
            self.sample_rate = layout.sample_rate
            self._voice = VoiceActivity(self.sample_rate, end_silence_ms=self._voice.end_silence_ms)
        self._wav_layout_known = True
        self._pcm.extend(self._raw[layout.data_offset :])
        self._raw.clear()
        self._ended.extend(self._voice.scan(self._pcm))

    def close_input(self) -> None:
        """finish-task: no more audio; what is still being said is an utterance of its own."""
        self._input_closed = True
        received = self.received_ms
        if received is not None:
            last = self._voice.close(received)
            if last is not None:
                self._ended.append(last)

    @property
    def final_due(self) -> bool:
        """An utterance has ended (or the input has) and waits for its final pass."""
        return bool(self._ended) or (self._input_closed and bool(self._raw))

    @property
    def received_ms(self) -> int | None:
        if not (self._sliceable and self._wav_layout_known):
            return None
        return int(len(self._pcm) // 2 * 1000 / self.sample_rate)

    def next_pass(self) -> StreamPass | None:
        """The next pass to ask for (finals first), or None when there is nothing to do for now."""
        if self.single_sentence and self._finals_emitted:
            return None
        received = self.received_ms
        if received is None:
            if not self._input_closed or not self._raw:
                return None
            audio, self._raw = bytes(self._raw), bytearray()
            return self._pass(audio, None, 0, final=True)
        if self._ended:
            utterance = self._ended.popleft()
            return self._slice(utterance.start_ms, utterance.end_ms, final=True)
        start = self._voice.open_start_ms
        if start is None or self._input_closed:
            return None
        if start != self._interim_start_ms:
            self._interim_start_ms, self._interim_length_ms = start, 0
        heard = received - start
        if heard - self._interim_length_ms < self.interim_interval_ms:
            return None
        if not self._language_decided and self._speech_ms() + heard < self.decoder.language_evidence_ms:
            return None  # too little speech yet to tell the language: no interim to show
        if self._results and not self.decoder.has_room():
            # Interims fill the decoder's spare time (finals and first results never wait for
            # them): what they cost is bounded by what the finals leave, not by how many streams
            # talk at once. The next frame looks again.
            return None
        self._interim_length_ms = heard
        return self._slice(start, received, final=False)

    def _speech_ms(self) -> int:
        return len(self._heard) // 2 * 1000 // self.sample_rate

    def _slice(self, start_ms: int, end_ms: int, *, final: bool) -> StreamPass | None:
        first = int(start_ms * self.sample_rate / 1000) * 2
        last = int(end_ms * self.sample_rate / 1000) * 2
        window = bytes(self._pcm[first:last])
        if len(window) < 2 * self.sample_rate // 100:  # under 10 ms: nothing to hear
            return None
        return self._pass(window, self.sample_rate, start_ms, final=final)

    def _pass(self, audio: bytes, sample_rate: int | None, start_ms: int, *, final: bool) -> StreamPass:
        decide = not self._language_decided
        evidence = b""
        if decide and sample_rate is not None:
            # The speech heard so far and this pass's, up to one Whisper window.
            evidence = (bytes(self._heard) + audio)[: EVIDENCE_S * sample_rate * 2]
        if final and sample_rate is not None and len(self._heard) < EVIDENCE_S * sample_rate * 2:
            self._heard.extend(audio)
        return StreamPass(
            stream=self.task_id,
            audio=audio,
            sample_rate=sample_rate,
            start_ms=start_ms,
            final=final,
            language=self._language,
            # An interim decides only with enough speech (next_pass waits for it); a final always.
            decide_language=decide,
            evidence=evidence,
            translate_to=self.translation_language,
            first=not final and not self._results,
        )

    def sentences(self, work: StreamPass, result: PassResult) -> list[StreamSentence]:
        """The sentences of a pass's result: one final sentence per recognised segment, or one
        interim sentence for what was heard so far."""
        if result.decided and not self._language_decided and result.language is not None:
            self._language, self._language_decided = result.language, True
        self._results += bool(result.segments)
        segments = result.segments
        target = self.translation_language
        next_id = self._next_sentence_id
        heard = result.language
        if work.final:
            if self.single_sentence:
                segments = segments[:1]
            sentences = [
                _build_sentence(next_id + i, [s], final=True, language=heard) for i, s in enumerate(segments)
            ]
            self._next_sentence_id += len(sentences)
            self._finals_emitted += len(sentences)
        else:
            sentences = [_build_sentence(next_id, segments, final=False, language=heard)] if segments else []
        if target is None:
            return sentences
        if result.translated is None:  # spoken in the target language: the transcript is the translation
            return [_with_translation(s, _translated_as_itself(s, target)) for s in sentences]
        if not work.final:
            return sentences  # another language: translations come with the final sentences
        return _attach_translations(sentences, result.translated, target)


EVIDENCE_S = 30  # the language is decided on at most one Whisper window of a stream's speech


def end_silence_ms(model: str, parameters: RealtimeParameters) -> int:
    """The pause that ends a sentence: the run-task's own setting, else the model's default."""
    family = "gummy" if model in GUMMY_MODELS else "paraformer"
    asked = parameters.max_end_silence if family == "gummy" else parameters.max_sentence_silence
    return asked if asked is not None else DEFAULT_END_SILENCE_MS[family]


def open_stream(
    task_id: str, payload: Any, *, decoder: StreamDecoder, interim_interval_s: float
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
    _check_languages(model, parameters)
    _check_end_silence(model, parameters)
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
        decoder=decoder,
        interim_interval_s=interim_interval_s,
    )


def _invalid(parameter: str, problem: str) -> DashScopeError:
    return DashScopeError(400, "InvalidParameter", f"Invalid parameter {parameter}: {problem}")


def _check_languages(model: str, parameters: RealtimeParameters) -> None:
    if model in GUMMY_MODELS:
        source = parameters.source_language
        if source not in (None, "auto") and source not in GUMMY_SOURCE_LANGUAGES:
            known = ", ".join(["auto", *sorted(GUMMY_SOURCE_LANGUAGES)])
            raise _invalid("source_language", f"{source!r} is not a supported language (use one of {known}).")
    elif model == "paraformer-realtime-v2":
        for hint in parameters.language_hints or []:
            if hint not in PARAFORMER_V2_LANGUAGES:
                known = ", ".join(sorted(PARAFORMER_V2_LANGUAGES))
                raise _invalid("language_hints", f"{hint!r} is not a supported language (use {known}).")


def _check_end_silence(model: str, parameters: RealtimeParameters) -> None:
    name = "max_end_silence" if model in GUMMY_MODELS else "max_sentence_silence"
    value = getattr(parameters, name)
    low, high = END_SILENCE_RANGE_MS
    if value is not None and not low <= value <= high:
        raise _invalid(name, f"{value} is out of range; it must be {low} to {high} milliseconds.")


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


def _translated_as_itself(sentence: StreamSentence, language: str) -> StreamSentence:
    return StreamSentence(
        sentence_id=sentence.sentence_id,
        begin_ms=sentence.begin_ms,
        end_ms=sentence.end_ms,
        text=sentence.text,
        words=sentence.words,
        final=sentence.final,
        language=language,
    )


def _with_translation(sentence: StreamSentence, translation: StreamSentence) -> StreamSentence:
    return StreamSentence(
        sentence_id=sentence.sentence_id,
        begin_ms=sentence.begin_ms,
        end_ms=sentence.end_ms,
        text=sentence.text,
        words=sentence.words,
        final=sentence.final,
        translation=translation,
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
        result.append(_with_translation(sentence, translation))
    return result


def _overlap(sentence: StreamSentence, segment: RecognizedSegment) -> int:
    return max(0, min(sentence.end_ms, segment.end_ms) - max(sentence.begin_ms, segment.start_ms))

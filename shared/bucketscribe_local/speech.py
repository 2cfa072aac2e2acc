"""The contract between the local emulators and an offline speech engine.

The SIS- and DashScope-compatible servers only know this protocol; the
faster-whisper engine (``local/whisper_engine.py``) is one implementation and
``FixedSpeechEngine`` (instant mode, for pipeline-overhead benchmarks) another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, Field

from bucketscribe.domain.coverage import SpeechSpan, total, union
from bucketscribe.domain.transcript import Segment, Transcript, Word


class RecognizedWord(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    text: str
    probability: float | None = None


class RecognizedSegment(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    text: str
    words: list[RecognizedWord] = Field(default_factory=list)


class Recognition(BaseModel):
    language: str | None = None
    duration_ms: int = Field(ge=0)
    segments: list[RecognizedSegment] = Field(default_factory=list)
    # Where the engine heard speech (voice activity on the decoded audio), for coverage checks;
    # None when the engine did not look.
    voice_activity: list[SpeechSpan] | None = None

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def speech_ms(self) -> int | None:
        """How much speech the engine detected (overlaps once), None if it did not look.

        What DashScope reports as ``content_duration_in_milliseconds``.
        """
        if self.voice_activity is None:
            return None
        return total(union((s.start_ms, s.end_ms) for s in self.voice_activity))

    def as_transcript(self, provider: str = "local") -> Transcript:
        """The canonical shape of this recognition, e.g. for a coverage check."""
        segments = [
            Segment(
                start_ms=s.start_ms,
                end_ms=s.end_ms,
                text=s.text,
                words=[Word(start_ms=w.start_ms, end_ms=w.end_ms, text=w.text) for w in s.words],
            )
            for s in self.segments
        ]
        return Transcript(
            provider=provider, language=self.language, duration_ms=self.duration_ms, segments=segments
        )


class UnreadableAudio(ValueError):
    """The bytes are not audio the engine can decode (SIS.0535 / FILE_PARSE_FAILED upstream)."""


# ``on_progress(done_ms, total_ms)``: how much of the recording the engine has worked through.
ProgressCallback = Callable[[int, int], None]


class SpeechEngine(Protocol):
    def recognize(
        self,
        audio: bytes | Path,
        *,
        language: str | None = None,
        translate: bool = False,
        channel: int | None = None,
        word_timestamps: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Recognition:
        """Recognise a whole recording.

        ``channel`` picks one channel of a multi-channel file (0 = left); ``None``
        downmixes. ``translate`` returns English text whatever was spoken.
        ``on_progress`` is called as the engine advances through the audio (at least once, at
        the end). Raises ``UnreadableAudio`` for bytes that do not decode.
        """
        ...


def engine_name(engine: object) -> str:
    """What an engine calls itself in results (``name``), for transcripts that say what ran."""
    return str(getattr(engine, "name", type(engine).__name__))


class FixedSpeechEngine:
    """Returns the same recognition for any input: no model, no decoding cost."""

    name = "fixed-text (instant, no recognition)"

    def __init__(self, text: str = "this is a fixed transcript from the instant engine") -> None:
        words = text.split()
        step = 300
        self._recognition = Recognition(
            language="en",
            duration_ms=step * len(words),
            segments=[
                RecognizedSegment(
                    start_ms=0,
                    end_ms=step * len(words),
                    text=text,
                    words=[
                        RecognizedWord(start_ms=i * step, end_ms=(i + 1) * step, text=w)
                        for i, w in enumerate(words)
                    ],
                )
            ],
        )

    def recognize(
        self,
        audio: bytes | Path,
        *,
        language: str | None = None,
        translate: bool = False,
        channel: int | None = None,
        word_timestamps: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Recognition:
        recognition = self._recognition.model_copy(deep=True)
        if on_progress is not None:
            on_progress(recognition.duration_ms, recognition.duration_ms)
        return recognition


class EngineDefaults:
    """An engine that assumes ``language`` whenever a request names none (``--language``), and
    translates into English when told to (``--task translate``)."""

    def __init__(self, engine: SpeechEngine, language: str | None, *, translate: bool = False) -> None:
        self._engine = engine
        self.inner = engine
        self.language = language
        self.translate = translate
        self.name = engine_name(engine)

    def recognize(
        self, audio: bytes | Path, *, language: str | None = None, translate: bool = False, **options: Any
    ) -> Recognition:
        recognition = self._engine.recognize(
            audio, language=language or self.language, translate=translate or self.translate, **options
        )
        # The text is English whatever was spoken: the transcript's language is the text's.
        return recognition.model_copy(update={"language": "en"}) if self.translate else recognition

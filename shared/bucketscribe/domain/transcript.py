"""The transcript: one canonical model of a recognised recording, whatever service produced it.

Times are integer milliseconds named ``*_ms`` everywhere, so no renderer or
provider mapping ever has to guess a unit.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from pydantic import BaseModel, Field, model_validator

from bucketscribe.domain.upload import ObjectRef


class Word(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    text: str


class Segment(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    text: str
    speaker: str | None = None
    channel: int | None = None
    words: list[Word] = Field(default_factory=list)

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Segment:
        if self.end_ms < self.start_ms:
            raise ValueError(f"segment ends ({self.end_ms} ms) before it starts ({self.start_ms} ms)")
        return self


class TranslatedSegment(BaseModel):
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    text: str


class Translation(BaseModel):
    language: str
    segments: list[TranslatedSegment] = Field(default_factory=list)


class CoverageBasis(StrEnum):
    """What a coverage figure measures the text against."""

    VOICE_ACTIVITY = "voice_activity"  # speech regions detected on the audio itself
    PROVIDER_SPEECH_TIME = "provider_speech_time"  # the provider's own total of detected speech
    AUDIO_DURATION = "audio_duration"  # only the recording's length is known: gaps, not speech


class Coverage(BaseModel):
    """How much of a recording's speech the text accounts for (see ``bucketscribe.domain.coverage``)."""

    basis: CoverageBasis
    # Detected speech, summed over channels; None when the basis knows no speech (audio_duration).
    speech_ms: int | None = Field(default=None, ge=0)
    # The part of it (or, on the audio_duration basis, of the recording) that has text nearby.
    covered_ms: int = Field(ge=0)
    # covered_ms / speech_ms (1.0 when there is no speech to miss); None without a speech figure.
    ratio: float | None = Field(default=None, ge=0, le=1)


class TranscriptWarning(BaseModel):
    """Something a reader of the transcript should know, e.g. ``SPEECH_WITHOUT_TEXT`` 22.7–52.7 s."""

    # A string, not an enum, so a reader older than a new code still loads the transcript.
    code: str
    message: str
    start_ms: int | None = Field(default=None, ge=0)
    end_ms: int | None = Field(default=None, ge=0)
    channel: int | None = None


class Transcript(BaseModel):
    """One recognised recording, whatever service produced it."""

    schema_version: int = 1
    source: ObjectRef | None = None
    provider: str
    model: str | None = None
    language: str | None = None
    duration_ms: int | None = Field(default=None, ge=0)
    channels: int | None = Field(default=None, ge=1)
    speakers: list[str] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    translations: list[Translation] = Field(default_factory=list)
    # None: not checked (transcripts written before coverage existed, or nothing to check with).
    coverage: Coverage | None = None
    warnings: list[TranscriptWarning] = Field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


MULTIPLE_LANGUAGES = "mul"  # ISO 639's code for several languages
LANGUAGES_DIFFER = "LANGUAGES_DIFFER"


def languages_heard(
    heard: str | Mapping[str, str | None] | None,
) -> tuple[str | None, list[TranscriptWarning]]:
    """A transcript's ``language`` from what a recogniser ran with: one language, or one per
    channel ("0", "1"). The same on every channel is that one; different ones are ``mul`` and a
    ``LANGUAGES_DIFFER`` warning that names each channel's."""
    if heard is None or isinstance(heard, str):
        return heard, []
    known = {int(channel): language for channel, language in heard.items() if language}
    if len(set(known.values())) <= 1:
        return next(iter(known.values()), None), []
    named = ", ".join(f"channel {channel} {language}" for channel, language in sorted(known.items()))
    warning = TranscriptWarning(
        code=LANGUAGES_DIFFER, message=f"the channels were heard in different languages: {named}"
    )
    return MULTIPLE_LANGUAGES, [warning]

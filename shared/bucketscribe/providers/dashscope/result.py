"""DashScope Paraformer file-transcription results (the JSON behind ``transcription_url``) → Transcript.

Pure data mapping, no SDK import. Shape: providers.md §1.5.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.domain.transcript import Segment, Transcript, Word, languages_heard


class DashScopeResultError(ValueError):
    """The JSON is not a DashScope transcription result."""


class _Word(BaseModel):
    model_config = ConfigDict(extra="ignore")
    begin_time: int = Field(ge=0)
    end_time: int = Field(ge=0)
    text: str
    punctuation: str = ""


class _Sentence(BaseModel):
    model_config = ConfigDict(extra="ignore")
    begin_time: int = Field(ge=0)
    end_time: int = Field(ge=0)
    text: str = ""
    sentence_id: int | None = None
    speaker_id: int | None = None
    words: list[_Word] = Field(default_factory=list)


class _ChannelTranscript(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channel_id: int = 0
    content_duration_in_milliseconds: int | None = None
    text: str = ""
    sentences: list[_Sentence] = Field(default_factory=list)
    # Not in DashScope's format: the language the local emulator's engine ran with.
    language: str | None = None


class _Properties(BaseModel):
    model_config = ConfigDict(extra="ignore")
    channels: list[int] = Field(default_factory=list)
    original_duration_in_milliseconds: int | None = None
    # Not in DashScope's format: the local emulator names the engine that really ran.
    engine: str | None = None


class DashScopeTranscription(BaseModel):
    model_config = ConfigDict(extra="ignore")
    file_url: str | None = None
    properties: _Properties = Field(default_factory=_Properties)
    transcripts: list[_ChannelTranscript]

    @classmethod
    def parse(cls, data: Any) -> DashScopeTranscription:
        if not isinstance(data, dict) or "transcripts" not in data:
            raise DashScopeResultError("not a DashScope result: expected a JSON object with 'transcripts'")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise DashScopeResultError(f"not a DashScope result: {where}: {first['msg']}") from exc


def transcript_from_dashscope(
    result: DashScopeTranscription | dict[str, Any], *, model: str | None = None, language: str | None = None
) -> Transcript:
    parsed = result if isinstance(result, DashScopeTranscription) else DashScopeTranscription.parse(result)
    segments: list[Segment] = []
    speakers: list[str] = []
    channels = sorted({t.channel_id for t in parsed.transcripts} | set(parsed.properties.channels))
    for channel in parsed.transcripts:
        for sentence in channel.sentences:
            speaker = f"Speaker {sentence.speaker_id + 1}" if sentence.speaker_id is not None else None
            if speaker and speaker not in speakers:
                speakers.append(speaker)
            words = [
                Word(
                    start_ms=w.begin_time,
                    end_ms=max(w.end_time, w.begin_time),
                    text=(w.text.strip() + w.punctuation.strip()) or w.text,
                )
                for w in sentence.words
            ]
            segments.append(
                Segment(
                    start_ms=sentence.begin_time,
                    end_ms=max(sentence.end_time, sentence.begin_time),
                    text=sentence.text.strip(),
                    speaker=speaker,
                    channel=channel.channel_id if len(channels) > 1 else None,
                    words=words,
                )
            )
    segments.sort(key=lambda s: (s.start_ms, s.channel or 0))
    heard, warnings = languages_heard(
        {str(t.channel_id): t.language for t in parsed.transcripts if t.language}
    )
    return Transcript(
        provider="dashscope",
        model=parsed.properties.engine or model,
        language=heard or language,
        warnings=warnings,
        duration_ms=parsed.properties.original_duration_in_milliseconds,
        channels=len(channels) or None,
        speakers=speakers,
        segments=segments,
    )


def reported_speech_ms(parsed: DashScopeTranscription) -> dict[int | None, int] | None:
    """The speech time DashScope reports per channel (``content_duration_in_milliseconds``, what it
    bills), keyed as ``transcript_from_dashscope`` labels segments (None for a single channel);
    None when the result has none."""
    reported = [(t.channel_id, t.content_duration_in_milliseconds) for t in parsed.transcripts]
    if not reported or any(ms is None for _, ms in reported):
        return None
    channels = {t.channel_id for t in parsed.transcripts} | set(parsed.properties.channels)
    several = len(channels) > 1
    speech: dict[int | None, int] = {}
    for channel, ms in reported:
        key = channel if several else None
        speech[key] = speech.get(key, 0) + (ms or 0)
    return speech

"""Huawei SIS recording-file results (query response or callback body) → canonical Transcript.

Pure data mapping with no SDK import, so the CLI and the callback path can use
it cheaply. Shape: providers.md §4.3.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.job import JobError
from bucketscribe.model import Segment, Transcript, Word


class SisResultError(ValueError):
    """The JSON is not a SIS recording-file result."""


class _WordInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start_time: int = Field(ge=0)
    end_time: int = Field(ge=0)
    word: str


class _AnalysisInfo(BaseModel):
    model_config = ConfigDict(extra="ignore")
    role: str | None = None


class _SegmentResult(BaseModel):
    model_config = ConfigDict(extra="ignore")
    text: str = ""
    analysis_info: _AnalysisInfo | None = None
    word_info: list[_WordInfo] | None = None


class _Segment(BaseModel):
    model_config = ConfigDict(extra="ignore")
    start_time: int = Field(ge=0)
    end_time: int = Field(ge=0)
    result: _SegmentResult


class SisJobResult(BaseModel):
    model_config = ConfigDict(extra="ignore")
    job_id: str | None = None
    status: str
    create_time: str | None = None
    start_time: str | None = None
    finish_time: str | None = None
    audio_duration: int | None = None
    segments: list[_Segment] | None = None
    # Error jobs and error answers carry these.
    error_code: str | None = None
    error_msg: str | None = None

    @classmethod
    def parse(cls, data: Any) -> SisJobResult:
        if not isinstance(data, dict) or "status" not in data:
            raise SisResultError("not a SIS result: expected a JSON object with a 'status' field")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise SisResultError(f"not a SIS result: {where}: {first['msg']}") from exc

    @property
    def created_at(self) -> datetime | None:
        """``create_time`` (RFC 3339) as a time; ``None`` when absent or unreadable."""
        try:
            return datetime.fromisoformat(self.create_time) if self.create_time else None
        except ValueError:
            return None

    @property
    def failure(self) -> JobError:
        return JobError(
            code=self.error_code or "SIS.JOB_ERROR",
            message=self.error_msg or "SIS reported the job as ERROR without a reason",
        )


_SPEAKER_RE = re.compile(r"^speaker(\d+)$", re.IGNORECASE)


def speaker_label(role: str | None) -> str | None:
    """SIS roles (AGENT / USER / speaker1…10) as labels a reader understands."""
    if not role:
        return None
    match = _SPEAKER_RE.match(role)
    if match:
        return f"Speaker {match.group(1)}"
    return role.capitalize()


def transcript_from_sis(
    result: SisJobResult | dict[str, Any], *, model: str | None = None, language: str | None = None
) -> Transcript:
    parsed = result if isinstance(result, SisJobResult) else SisJobResult.parse(result)
    if parsed.status != "FINISHED":
        raise SisResultError(f"SIS job is {parsed.status}, not FINISHED: there is no transcript yet")
    segments: list[Segment] = []
    speakers: list[str] = []
    for raw in parsed.segments or []:
        speaker = speaker_label(raw.result.analysis_info.role if raw.result.analysis_info else None)
        if speaker and speaker not in speakers:
            speakers.append(speaker)
        words = [
            Word(start_ms=w.start_time, end_ms=max(w.end_time, w.start_time), text=w.word)
            for w in raw.result.word_info or []
        ]
        segments.append(
            Segment(
                start_ms=raw.start_time,
                end_ms=max(raw.end_time, raw.start_time),
                text=raw.result.text.strip(),
                speaker=speaker,
                words=words,
            )
        )
    segments.sort(key=lambda s: (s.start_ms, s.end_ms))
    return Transcript(
        provider="sis",
        model=model,
        language=language,
        duration_ms=parsed.audio_duration,
        speakers=speakers,
        segments=segments,
    )

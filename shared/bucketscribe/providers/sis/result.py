"""Huawei SIS recording-file results (query response or callback body) → canonical Transcript.

Pure data mapping with no SDK import, so the CLI and the callback path can use
it cheaply. Shape: providers.md §4.3.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from typing_extensions import TypedDict

from bucketscribe.domain.job import JobError
from bucketscribe.domain.transcript import Transcript, languages_heard
from bucketscribe.render.gc_pause import gc_paused


class SisResultError(ValueError):
    """The JSON is not a SIS recording-file result."""


# The segments are read as typed dicts, not models: pydantic checks them in one native pass
# and the mapping below reads plain dicts, which for a five-hour call (60 000 words) is
# several times faster than building and then copying a model object per word.
class _WordInfo(TypedDict):
    start_time: Annotated[int, Field(ge=0)]
    end_time: Annotated[int, Field(ge=0)]
    word: str


class _AnalysisInfo(TypedDict, total=False):
    role: str | None


class _SegmentResult(TypedDict, total=False):
    text: str
    analysis_info: _AnalysisInfo | None
    word_info: list[_WordInfo] | None


class _Segment(TypedDict):
    start_time: Annotated[int, Field(ge=0)]
    end_time: Annotated[int, Field(ge=0)]
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
    # Not in SIS's API: the local emulator names the engine that really ran (an offline Whisper,
    # not the property asked for), so the transcript does not claim a model it never met, and the
    # language it ran with (one per channel, "0"/"1", where a call's sides differ).
    engine: str | None = None
    language: str | dict[str, str] | None = None

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


# A call's two sides are labelled as real-time streams label them (RealtimeOptions.speakers), so
# that one profile's transcripts say the same whichever way they were made.
_ROLE_LABELS = {"AGENT": "Agent", "USER": "Customer"}


def speaker_label(role: str | None) -> str | None:
    """SIS roles (AGENT / USER / speaker1…10) as labels a reader understands."""
    if not role:
        return None
    match = _SPEAKER_RE.match(role)
    if match:
        return f"Speaker {match.group(1)}"
    return _ROLE_LABELS.get(role.upper(), role.capitalize())


def transcript_from_sis(
    result: SisJobResult | dict[str, Any], *, model: str | None = None, language: str | None = None
) -> Transcript:
    with gc_paused():  # tens of thousands of word objects, no cycles among them
        parsed = result if isinstance(result, SisJobResult) else SisJobResult.parse(result)
        if parsed.status != "FINISHED":
            raise SisResultError(f"SIS job is {parsed.status}, not FINISHED: there is no transcript yet")
        segments = [_segment(raw) for raw in parsed.segments or []]
        # Speakers in the order the provider first names them, segments in time order.
        speakers = list(dict.fromkeys(s["speaker"] for s in segments if s["speaker"]))
        segments.sort(key=lambda s: (s["start_ms"], s["end_ms"]))
        heard, warnings = languages_heard(parsed.language)
        return Transcript.model_validate(
            {
                "provider": "sis",
                "model": parsed.engine or model,
                "language": heard or language,
                "duration_ms": parsed.audio_duration,
                "speakers": speakers,
                "segments": segments,
                "warnings": [w.model_dump() for w in warnings],
            }
        )


def _role(raw: _Segment) -> str | None:
    analysis = raw["result"].get("analysis_info")
    return analysis.get("role") if analysis else None


def _segment(raw: _Segment) -> dict[str, Any]:
    """One SIS segment as the canonical Segment's fields (validated with the whole transcript)."""
    result = raw["result"]
    return {
        "start_ms": raw["start_time"],
        "end_ms": max(raw["end_time"], raw["start_time"]),
        "text": result.get("text", "").strip(),
        "speaker": speaker_label(_role(raw)),
        "words": [
            {"start_ms": w["start_time"], "end_ms": max(w["end_time"], w["start_time"]), "text": w["word"]}
            for w in result.get("word_info") or ()
        ],
    }

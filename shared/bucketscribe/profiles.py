"""Per-prefix settings: which provider, model and options apply to an upload.

A profile is chosen by the longest matching key prefix below the input prefix,
so ``incoming/calls/`` can use 8 kHz telephone settings and ``incoming/media/``
16 kHz ones.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

OutputFormat = Literal["json", "txt", "srt", "vtt"]
SisChannel = Literal["MONO", "LEFT_AGENT", "RIGHT_AGENT"]


class SisOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    property: str = "chinese_16k_media"
    audio_format: str = "auto"
    add_punc: bool = True
    digit_norm: bool = True
    need_word_info: bool = True
    vocabulary_id: str | None = None
    diarization: bool = True
    channel: SisChannel = "MONO"
    emotion: bool = False
    speed: bool = False


class RenderOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker_labels: bool = True
    max_cue_chars: int = Field(default=84, ge=10)
    max_cue_ms: int = Field(default=6000, ge=500)


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = "default"
    prefix: str = ""
    provider: Literal["sis", "dashscope"] = "sis"
    language: str | None = None
    # "auto": extract 16 kHz mono Opus from videos, from containers the provider does not
    # take, and from files over the provider's size limit; "always" / "never" as they say.
    extract_audio: Literal["auto", "always", "never"] = "auto"
    outputs: list[OutputFormat] = Field(default_factory=lambda: ["json", "txt", "srt", "vtt"])
    render: RenderOptions = Field(default_factory=RenderOptions)
    sis: SisOptions = Field(default_factory=SisOptions)

    @property
    def model_name(self) -> str:
        return self.sis.property


class ProfileSet(BaseModel):
    """All profiles; ``match`` picks the one whose prefix is the longest match."""

    profiles: list[Profile] = Field(default_factory=lambda: [Profile()])

    def match(self, relative_key: str) -> Profile:
        best: Profile | None = None
        for profile in self.profiles:
            if relative_key.startswith(profile.prefix) and (
                best is None or len(profile.prefix) > len(best.prefix)
            ):
                best = profile
        if best is None:
            raise LookupError(f"no profile matches {relative_key!r} and no default profile (prefix '') is set")
        return best

    def by_name(self, name: str) -> Profile:
        for profile in self.profiles:
            if profile.name == name:
                return profile
        raise LookupError(f"unknown profile {name!r}")

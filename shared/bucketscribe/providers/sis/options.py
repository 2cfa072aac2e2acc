"""What a profile may ask of SIS recording-file recognition (its ``"sis"`` block), checked at load."""

from __future__ import annotations

import builtins
from typing import Literal

from pydantic import BaseModel, ConfigDict

from bucketscribe.domain.profile import Profile

# Where a profile keeps these options.
OPTIONS_KEY = "sis"
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

    @classmethod
    def of(cls, profile: Profile) -> SisOptions:
        """A profile's ``"sis"`` block (checked when the profiles load)."""
        return cls.model_validate(profile.options(OPTIONS_KEY))

    # ``builtins.property``: the field above is called ``property`` (SIS's own name for the model).
    @builtins.property
    def channels_needed(self) -> int:
        return 1 if self.channel == "MONO" else 2

    def channel_expectation(self) -> str:
        """What these options expect of the audio's channels, in words for an error message."""
        if self.channel == "MONO":
            return "any audio"
        agent, customer = ("left", "right") if self.channel == "LEFT_AGENT" else ("right", "left")
        return f"stereo audio with the agent on the {agent} channel and the customer on the {customer}"

"""What a profile may ask of Echo (its ``"echo"`` block), checked when the profiles load."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from bucketscribe.domain.profile import Profile

OPTIONS_KEY = "echo"


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: str = Field(default="the echo heard", min_length=1)
    model: str = "echo-1"

    @classmethod
    def of(cls, profile: Profile) -> EchoOptions:
        return cls.model_validate(profile.options(OPTIONS_KEY))

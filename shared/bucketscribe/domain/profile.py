"""Profiles: per-prefix settings saying which provider, options and outputs apply to an upload.

A profile is chosen by the longest matching key prefix below the input prefix,
so ``incoming/calls/`` can use 8 kHz telephone settings and ``incoming/media/``
16 kHz ones.
"""

from __future__ import annotations

import math
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

OutputFormat = Literal["json", "txt", "srt", "vtt"]
ALL_OUTPUTS: tuple[OutputFormat, ...] = ("json", "txt", "srt", "vtt")
OverlapStyle = Literal["simultaneous", "dialogue"]


class RenderOptions(BaseModel):
    """How a transcript becomes txt, srt and vtt: speaker labels and the subtitle rules.

    The subtitle defaults are those of the Netflix Timed Text Style Guide: 42 characters per
    line and 20 characters per second for adult programmes (English (USA) guide), at most two
    lines, and a cue on screen for 5/6 s to 7 s (General Requirements).  Widths and reading
    speed are counted in display columns, a CJK character taking two, so the same limits give
    21 Chinese characters per line and 10 per second (Netflix's Chinese guides: 16 and 9).

    ``overlap`` is what happens when speakers talk over each other:

    - ``simultaneous`` (the default): each speaker keeps their own cues, timed to their own
      speech, and the cues overlap as the speech does; SRT and WebVTT both allow overlapping
      cues, players stack them, and in WebVTT the later speaker's cue is placed at the top
      (``line:0``) so the two never cover each other.  Nothing is delayed, shortened or moved
      away from the words it shows, and each speaker keeps two lines.
    - ``dialogue``: the broadcast style, for players that show one cue at a time: two
      overlapping one-line utterances share one cue, a dash before each speaker's line
      (``-[Agent] …`` / ``-[Customer] …``); a cue never overlaps another, so during sustained
      cross-talk cues wait for the previous one to end.
    """

    model_config = ConfigDict(extra="forbid")

    speaker_labels: bool = True
    line_chars: int = Field(default=42, ge=10, le=200)
    max_lines: int = Field(default=2, ge=1, le=3)
    # Characters in a whole cue; by default the lines' room (line_chars × max_lines).  Kept
    # from the first profile format, where it also narrowed the line when under 42.
    max_cue_chars: int | None = Field(default=None, ge=10)
    min_cue_ms: int = Field(default=833, ge=0)
    max_cue_ms: int = Field(default=7000, ge=500)
    max_cps: float = Field(default=20.0, ge=5, le=100)
    overlap: OverlapStyle = "simultaneous"

    @model_validator(mode="after")
    def _consistent(self) -> RenderOptions:
        if "min_cue_ms" in self.model_fields_set and self.min_cue_ms > self.max_cue_ms:
            raise ValueError(f"min_cue_ms ({self.min_cue_ms}) is over max_cue_ms ({self.max_cue_ms})")
        if self.readable_columns < 10:
            # A cue must hold a word or two: 10 characters readable within max_cue_ms.
            raise ValueError(
                f"max_cps {self.max_cps:g} × max_cue_ms {self.max_cue_ms} leaves under 10 characters per cue"
            )
        if self.overlap == "dialogue" and self.max_lines < 2:
            raise ValueError("overlap 'dialogue' puts two speakers in one cue: it needs max_lines >= 2")
        return self

    @property
    def cue_chars(self) -> int:
        """Characters in a whole cue, labels included."""
        return self.max_cue_chars or self.line_chars * self.max_lines

    @property
    def readable_columns(self) -> int:
        """The most display columns one cue may hold: what can be read within max_cue_ms."""
        columns = math.floor(self.max_cps * self.max_cue_ms / 1000)
        while self.reading_ms(columns) > self.max_cue_ms:  # float rounding, never more than one
            columns -= 1
        return columns

    def reading_ms(self, columns: int) -> int:
        """How long ``columns`` display columns take to read at ``max_cps``."""
        return math.ceil(columns * 1000 / self.max_cps)

    @property
    def shortest_cue_ms(self) -> int:
        """The minimum duration, never over the maximum (older profiles set only max_cue_ms)."""
        return min(self.min_cue_ms, self.max_cue_ms)


class Profile(BaseModel):
    """One prefix's settings. What the provider is asked to do sits under the provider's own key
    (``{"provider": "<name>", "<name>": {...}}``): the provider reads and
    checks its block (``providers/registry.py`` refuses a profile with a block no provider knows,
    or one its provider refuses, when the profiles load)."""

    model_config = ConfigDict(extra="allow")

    name: str = "default"
    prefix: str = ""
    # Which provider serves the profile's uploads; "" until the profiles load, where the
    # deployment's default provider is filled in.
    provider: str = ""
    # "realtime": the submit worker streams the upload itself and writes the outputs at once (a
    # provider that streams); "batch": a provider task, finished by callback, push or poll. Set
    # from the provider when the profiles load.
    mode: Literal["batch", "realtime"] = "batch"
    language: str | None = None
    # What the provider is sent (domain/media_routing.py). "auto": the upload as it is when the
    # provider decodes it, its audio copied into a container it reads, or re-encoded (16-bit PCM)
    # only what it cannot decode; cut into parts when over its limits. "always": a compact Opus
    # speech track whatever the upload. "never": the upload as it is, or refused with the reason.
    extract_audio: Literal["auto", "always", "never"] = "auto"
    outputs: list[OutputFormat] = Field(default_factory=lambda: list(ALL_OUTPUTS))
    render: RenderOptions = Field(default_factory=RenderOptions)
    # Where the end of each of this profile's uploads is announced (a signed Standard Webhooks
    # POST; HTTPS to a public address unless BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE), and the name of
    # the secret-store entry holding its ``whsec_…`` signing secret (unset: the deployment's,
    # BUCKETSCRIBE_WEBHOOK_SECRET_NAME).
    webhook_url: str | None = None
    webhook_secret_name: str | None = None

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url_names_a_host(cls, url: str | None) -> str | None:
        if not url:
            return None
        parts = urlsplit(url)
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError("webhook_url must be an https:// URL with a host")
        if parts.username or parts.password:
            # It would travel in every job's logs and settings: the signature authenticates us.
            raise ValueError("webhook_url must not carry a user name or password")
        return url

    def options(self, key: str) -> dict[str, Any]:
        """The provider options under ``key`` (empty: the provider's defaults)."""
        block = (self.model_extra or {}).get(key)
        return dict(block) if isinstance(block, dict) else {}

    @property
    def option_keys(self) -> set[str]:
        """The provider blocks this profile carries."""
        return set(self.model_extra or {})

    def serving(self, provider: str) -> Profile:
        """This profile as it serves a job of ``provider``: a profile that streams hands uploads too
        long to stream to a file-transcription provider, which serves them in batch mode."""
        if provider == self.provider:
            return self
        return self.model_copy(update={"provider": provider, "mode": "batch"})


class ProfileSet(BaseModel):
    """All profiles; ``match`` picks the one whose prefix is the longest match."""

    profiles: list[Profile] = Field(default_factory=list)

    def match(self, relative_key: str) -> Profile:
        best: Profile | None = None
        for profile in self.profiles:
            if relative_key.startswith(profile.prefix) and (
                best is None or len(profile.prefix) > len(best.prefix)
            ):
                best = profile
        if best is None:
            raise LookupError(
                f"no profile matches {relative_key!r} and no default profile (prefix '') is set"
            )
        return best

    def find(self, name: str) -> Profile | None:
        """The profile called ``name``; None if it was removed since a job was made with it."""
        return next((profile for profile in self.profiles if profile.name == name), None)

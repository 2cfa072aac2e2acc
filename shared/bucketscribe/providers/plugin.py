"""What the provider registry knows of a provider before its adapter is built.

Each ``providers/<name>/`` folder offers one ``ProviderPlugin`` per service it speaks for; the
registry (``providers/registry.py``) lists them. A plugin checks the options a profile gives it,
names the model they choose, finds the contradictions between the deployment's settings and what
the service promises, and builds the adapter — reading its own settings and secrets only then, so
a function that never talks to a provider never pays for it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.provider import Provider
from bucketscribe.ports.secrets import SecretStore
from bucketscribe.settings import Settings


class ProviderPlugin(Protocol):
    name: str
    # Where a profile keeps this provider's options ({"provider": name, options_key: {...}}).
    options_key: str
    # Real-time mode: the submit worker streams the upload itself (a ``StreamingProvider``).
    streams: bool
    # How long the service keeps a finished result: no job may wait longer for one.
    result_retention: timedelta | None

    def check_options(self, profile: Profile) -> None:
        """Raise ``ValueError`` naming what is wrong with ``profile``'s options for this provider."""
        ...

    def model_name(self, profile: Profile) -> str:
        """The model (or property) ``profile``'s options choose, as a job records it."""
        ...

    def channels(self, profile: Profile) -> tuple[int, str]:
        """How many channels an upload must have under ``profile``, and that need in words."""
        ...

    def also_serves(self, profile: Profile) -> set[str]:
        """Other providers this profile's uploads may go to (a stream hands long uploads to one)."""
        ...

    def settings_problems(self, settings: Settings) -> list[str]:
        """What in the deployment's settings contradicts what this service promises."""
        ...

    def build(self, settings: Settings, secrets: SecretStore) -> Provider:
        """The adapter, with its own settings and credentials."""
        ...

    def transcript_from_result(self, raw: Any, *, model: str | None, language: str | None) -> Transcript:
        """A result as the service returns it (a saved query answer or callback body), read
        offline (``bucketscribe normalize``); ``ValueError`` when it is not one."""
        ...

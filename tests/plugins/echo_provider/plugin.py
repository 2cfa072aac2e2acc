"""Echo, as the provider registry knows it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.provider import Provider, TaskProvider
from bucketscribe.ports.secrets import SecretStore
from bucketscribe.providers.plugin import ProviderPlugin
from bucketscribe.settings import Settings
from tests.plugins.echo_provider.options import OPTIONS_KEY, EchoOptions

# Longer than any job may wait (BUCKETSCRIBE_JOB_DEADLINE_S, 12 h by default): the registry refuses
# settings under which a job could wait for a result already dropped.
RESULT_RETENTION = timedelta(hours=24)


class EchoPlugin:
    name = "echo"
    options_key = OPTIONS_KEY
    streams = False
    result_retention: timedelta | None = RESULT_RETENTION

    def check_options(self, profile: Profile) -> None:
        EchoOptions.of(profile)

    def model_name(self, profile: Profile) -> str:
        return EchoOptions.of(profile).model

    def channels(self, profile: Profile) -> tuple[int, str]:
        return 1, "any audio"

    def also_serves(self, profile: Profile) -> set[str]:
        return set()

    def settings_problems(self, settings: Settings) -> list[str]:
        return []

    def build(self, settings: Settings, secrets: SecretStore) -> Provider:
        from tests.plugins.echo_provider.adapter import EchoProvider
        from tests.plugins.echo_provider.service import SERVICE

        adapter: TaskProvider = EchoProvider(SERVICE)
        return adapter

    def transcript_from_result(self, raw: Any, *, model: str | None, language: str | None) -> Transcript:
        try:
            text, duration_ms = str(raw["text"]), int(raw["duration_ms"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not an Echo result: {exc}") from exc
        return Transcript.model_validate(
            {
                "provider": self.name,
                "model": model,
                "language": language,
                "duration_ms": duration_ms,
                "segments": [{"start_ms": 0, "end_ms": duration_ms, "text": text}],
            }
        )


PLUGINS: tuple[ProviderPlugin, ...] = (EchoPlugin(),)

"""Huawei SIS recording-file recognition, as the provider registry knows it."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from pydantic import SecretStr

from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.provider import Provider
from bucketscribe.ports.secrets import MissingSecret, SecretStore, resolve_json_secret
from bucketscribe.providers.sis.options import OPTIONS_KEY, SisOptions
from bucketscribe.settings import Settings

# SIS promises a result within 6 h and keeps it 72 h from completion (providers.md §4.5).
RESULT_WITHIN = timedelta(hours=6)
RESULT_RETENTION = timedelta(hours=72)


class SisPlugin:
    name = "sis"
    options_key = OPTIONS_KEY
    streams = False
    result_retention: timedelta | None = RESULT_RETENTION

    def check_options(self, profile: Profile) -> None:
        SisOptions.of(profile)

    def model_name(self, profile: Profile) -> str:
        return SisOptions.of(profile).property

    def channels(self, profile: Profile) -> tuple[int, str]:
        options = SisOptions.of(profile)
        return options.channels_needed, options.channel_expectation()

    def also_serves(self, profile: Profile) -> set[str]:
        return set()

    def settings_problems(self, settings: Settings) -> list[str]:
        if settings.presign_expiry_s < RESULT_WITHIN.total_seconds():
            return [
                f"BUCKETSCRIBE_PRESIGN_EXPIRY_S ({settings.presign_expiry_s}) is shorter than the "
                f"{int(RESULT_WITHIN.total_seconds())} s in which SIS promises to fetch and transcribe a file"
            ]
        return []

    def build(self, settings: Settings, secrets: SecretStore) -> Provider:
        from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider
        from bucketscribe.providers.sis.settings import SisSettings

        own = SisSettings()
        if own.credentials_secret_name:
            stored = resolve_json_secret(own.credentials_secret_name, what="SIS credentials", store=secrets)
            ak, sk = stored.get("ak"), stored.get("sk")
            project_id = stored.get("project_id") or own.project_id
        else:
            ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK"), os.environ.get("HUAWEICLOUD_SDK_SK")
            project_id = own.environment_project_id
        if not (ak and sk and project_id):
            raise MissingSecret(
                "SIS credentials are not configured: set HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and "
                "BUCKETSCRIBE_SIS_PROJECT_ID, or BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME"
            )
        return SisProvider(
            SisCredentials(ak=ak, sk=SecretStr(sk), project_id=project_id),
            region=own.region,
            endpoint=own.endpoint,
            decodes_any_media=settings.provider_decodes == "any",
        )

    def transcript_from_result(self, raw: Any, *, model: str | None, language: str | None) -> Transcript:
        from bucketscribe.providers.sis.result import transcript_from_sis

        return transcript_from_sis(raw, model=model, language=language)


PLUGINS = (SisPlugin(),)

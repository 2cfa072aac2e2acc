"""Alibaba DashScope, as the provider registry knows it: Paraformer file transcription
(``dashscope``) and real-time recognition over the WebSocket API (``dashscope-realtime``)."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.provider import Provider
from bucketscribe.ports.secrets import SecretStore, resolve_secret
from bucketscribe.providers.dashscope.options import (
    FILES_KEY,
    REALTIME_KEY,
    DashScopeOptions,
    RealtimeOptions,
)
from bucketscribe.settings import Settings

if TYPE_CHECKING:
    from bucketscribe.providers.dashscope.settings import DashScopeSettings

FILES = "dashscope"
REALTIME = "dashscope-realtime"
# Task information and result links are kept 24 h after a task ends (providers.md §1.6).
RESULT_RETENTION = timedelta(hours=24)


def _api_key(own: DashScopeSettings, secrets: SecretStore) -> str:
    return resolve_secret(own.api_key, own.api_key_secret_name, what="the DashScope API key", store=secrets)


def _queue_problems(settings: Settings) -> list[str]:
    if settings.presign_expiry_s < settings.job_deadline_s:
        return [
            f"BUCKETSCRIBE_PRESIGN_EXPIRY_S ({settings.presign_expiry_s}) is shorter than the job deadline "
            f"({settings.job_deadline_s}): DashScope queues without a promise and could fetch an expired link"
        ]
    return []


class FileTranscription:
    name = FILES
    options_key = FILES_KEY
    streams = False
    result_retention: timedelta | None = RESULT_RETENTION

    def check_options(self, profile: Profile) -> None:
        DashScopeOptions.of(profile)

    def model_name(self, profile: Profile) -> str:
        return DashScopeOptions.of(profile).model

    def channels(self, profile: Profile) -> tuple[int, str]:
        options = DashScopeOptions.of(profile)
        return options.channels_needed, options.channel_expectation()

    def also_serves(self, profile: Profile) -> set[str]:
        return set()

    def settings_problems(self, settings: Settings) -> list[str]:
        return _queue_problems(settings)

    def build(self, settings: Settings, secrets: SecretStore) -> Provider:
        from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider
        from bucketscribe.providers.dashscope.settings import DashScopeSettings

        own = DashScopeSettings()
        config = DashScopeConfig(
            api_key=SecretStr(_api_key(own, secrets)),
            base_http_url=own.base_url,
            workspace=own.workspace,
            max_files_per_task=own.max_files_per_task,
            throttle_backoff_s=own.throttle_backoff_s,
        )
        return DashScopeProvider(config, decodes_any_media=settings.provider_decodes == "any")

    def transcript_from_result(self, raw: Any, *, model: str | None, language: str | None) -> Transcript:
        from bucketscribe.providers.dashscope.result import transcript_from_dashscope

        return transcript_from_dashscope(raw, model=model, language=language)


class RealtimeRecognition:
    name = REALTIME
    options_key = REALTIME_KEY
    streams = True
    result_retention: timedelta | None = None  # a stream keeps nothing at the service

    def check_options(self, profile: Profile) -> None:
        RealtimeOptions.of(profile)
        DashScopeOptions.of(profile)  # the file-transcription options long uploads are handed over with

    def model_name(self, profile: Profile) -> str:
        return RealtimeOptions.of(profile).model

    def channels(self, profile: Profile) -> tuple[int, str]:
        options = RealtimeOptions.of(profile)
        return options.channels_needed, options.channel_expectation()

    def also_serves(self, profile: Profile) -> set[str]:
        return {FILES} if RealtimeOptions.of(profile).longer_uploads == "batch" else set()

    def settings_problems(self, settings: Settings) -> list[str]:
        return []

    def build(self, settings: Settings, secrets: SecretStore) -> Provider:
        from bucketscribe.providers.dashscope.realtime import (
            DEFAULT_WEBSOCKET_URL,
            DashScopeRealtimeProvider,
            RealtimeStreamer,
        )
        from bucketscribe.providers.dashscope.settings import DashScopeSettings

        own = DashScopeSettings()
        streamer = RealtimeStreamer(
            api_key=_api_key(own, secrets),
            websocket_url=own.ws_url or DEFAULT_WEBSOCKET_URL,
            workspace=own.workspace,
            # No task-finished long after the audio ended: give up within the stream's own budget.
            finish_timeout_s=float(settings.realtime_budget_s),
        )
        return DashScopeRealtimeProvider(streamer)

    def transcript_from_result(self, raw: Any, *, model: str | None, language: str | None) -> Transcript:
        raise ValueError("a real-time stream leaves no result to read: its transcript is written at once")


PLUGINS = (FileTranscription(), RealtimeRecognition())

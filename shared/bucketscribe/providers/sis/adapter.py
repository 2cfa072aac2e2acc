"""Huawei SIS recording-file recognition adapter, on the real ``huaweicloudsdksis`` SDK.

The SDK is imported on first use, so a function that never talks to SIS never
pays for it. Errors are sorted into retryable (concurrency limit SIS.0312, 429,
5xx, timeouts, connection failures, and 401/403: our credentials, not the file)
and permanent (bad config SIS.0032, bad audio SIS.0535, other 4xx), keeping the
provider's own code and message.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, SecretStr

from bucketscribe.domain.job import JobError
from bucketscribe.domain.media_routing import MediaRequirements
from bucketscribe.domain.profile import Profile
from bucketscribe.ports.provider import (
    FileOutcome,
    ProviderError,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskStatus,
)
from bucketscribe.providers.sis.options import SisOptions
from bucketscribe.providers.sis.result import SisJobResult, transcript_from_sis
from bucketscribe.providers.wire_errors import request_may_have_arrived, status_may_have_taken_effect

MAX_TASK_ID_LENGTH = 128
RETRYABLE_SIS_CODES = frozenset({"SIS.0312", "SIS.0001", "SIS.0100", "SIS.0033", "APIG.0201", "APIG.0308"})
# The account's concurrency limit (SIS.0312) and the gateway's flow control (APIG.0308, 429):
# the upload waits for capacity instead of counting a refusal.
OVER_CAPACITY_SIS_CODES = frozenset({"SIS.0312", "APIG.0308"})
NOT_FOUND_MARKERS = ("task id is not found", "not found")
# What audio_format "auto" detects (providers.md §4.2: wav (pcm/ulaw/alaw/adpcm), mp3, m4a,
# ogg-speex, ogg-opus, amr, wma; stereo allowed), by container family and codec.
SIS_DECODES: dict[str, frozenset[str] | None] = {
    "wav": frozenset({"pcm_s16le", "pcm_u8", "pcm_mulaw", "pcm_alaw", "adpcm_ms", "adpcm_ima_wav"}),
    "mp3": frozenset({"mp3"}),
    "mp4": frozenset({"aac"}),
    "ogg": frozenset({"opus", "speex"}),
    "amr": frozenset({"amr_nb"}),
    "asf": frozenset({"wmav1", "wmav2"}),
}
# ≤ 5 h of audio and ≤ 300 MB per job (providers.md §4.5).
SIS_MAX_BYTES = 300 * 1024 * 1024
SIS_MAX_DURATION_MS = 5 * 3600 * 1000
# The property is language_rate_domain ("chinese_8k_common") and its rate must match the audio.
_PROPERTY_RATE = re.compile(r"_(\d+)k_")


class SisCredentials(BaseModel):
    ak: str
    sk: SecretStr
    project_id: str


class SisProvider:
    """A ``TaskProvider`` that ``CallsBack``: SIS has no way to list or find jobs (only submit and
    query by id), so a job whose submit answer was lost is found only through the callback its
    attempt's URL carries."""

    name = "sis"
    max_files_per_task = 1

    def __init__(
        self,
        credentials: SisCredentials,
        *,
        region: str = "cn-north-4",
        endpoint: str | None = None,
        timeout_s: tuple[float, float] = (10.0, 30.0),
        decodes_any_media: bool = False,
    ) -> None:
        self._credentials = credentials
        self._region = region
        self._endpoint = endpoint
        self._timeout_s = timeout_s
        # An endpoint backed by an engine that reads whatever ffmpeg reads (the local emulator):
        # uploads go to it as they are, and only the size and length limits stand.
        self._decodes_any_media = decodes_any_media
        self._client: Any = None
        self._client_lock = threading.Lock()

    def model_name(self, profile: Profile) -> str:
        return SisOptions.of(profile).property

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        options = SisOptions.of(profile)
        match = _PROPERTY_RATE.search(options.property)
        documented = not self._decodes_any_media
        return MediaRequirements(
            provider=self.name,
            profile=profile.name,
            decodes=SIS_DECODES if documented else None,
            takes_video=not documented,
            max_bytes=SIS_MAX_BYTES,
            max_duration_ms=SIS_MAX_DURATION_MS,
            max_channels=2 if documented else None,
            sample_rate=int(match.group(1)) * 1000 if match and documented else None,
            channels_needed=options.channels_needed,
            channels_wanted=options.channel_expectation(),
        )

    def _sdk_client(self) -> Any:
        with self._client_lock:  # uploads are submitted side by side: one client for them all
            if self._client is None:
                self._client = self._new_client()
            return self._client

    def _new_client(self) -> Any:
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.http.http_config import HttpConfig
        from huaweicloudsdksis.v1 import SisClient
        from huaweicloudsdksis.v1.region.sis_region import SisRegion

        config = HttpConfig.get_default_config()
        config.timeout = self._timeout_s
        # Keep a connection for each upload submitted at once (Limits.side_by_side, at most 64).
        config.pool_maxsize = 64
        builder = (
            SisClient.new_builder()
            .with_credentials(
                BasicCredentials(
                    self._credentials.ak,
                    self._credentials.sk.get_secret_value(),
                    self._credentials.project_id,
                )
            )
            .with_http_config(config)
        )
        if self._endpoint:
            builder = builder.with_endpoint(self._endpoint)
        else:
            builder = builder.with_region(SisRegion.value_of(self._region))
        return builder.build()

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        from huaweicloudsdksis.v1 import (
            AnalysisInfo,
            PostTranscriberJobs,
            PushTranscriberJobsRequest,
            TranscriberConfig,
        )

        options = SisOptions.of(profile)
        receipts: list[SubmitReceipt] = []
        for item in items:
            config = TranscriberConfig(
                audio_format=options.audio_format,
                _property=options.property,
                add_punc="yes" if options.add_punc else "no",
                digit_norm="yes" if options.digit_norm else "no",
                need_word_info="yes" if options.need_word_info else "no",
                vocabulary_id=options.vocabulary_id,
                callback_url=item.callback_url,
                need_analysis_info=AnalysisInfo(
                    diarization=options.diarization,
                    channel=options.channel,
                    emotion=options.emotion,
                    speed=options.speed,
                ),
            )
            request = PushTranscriberJobsRequest(
                body=PostTranscriberJobs(config=config, data_url=item.media_url)
            )
            try:
                response = self._call(lambda r=request: self._sdk_client().push_transcriber_jobs(r))
            except ProviderError as exc:
                if exc.retryable or exc.maybe_done or len(items) > 1:
                    raise
                receipts.append(SubmitReceipt(job_id=item.job_id, error=exc.as_job_error()))
                continue
            receipts.append(SubmitReceipt(job_id=item.job_id, task_id=response.job_id))
        return receipts

    def fetch(self, task_id: str) -> TaskResult:
        from huaweicloudsdksis.v1 import CollectTranscriberJobRequest

        try:
            response = self._call(
                lambda: self._sdk_client().collect_transcriber_job(
                    CollectTranscriberJobRequest(job_id=task_id)
                )
            )
        except ProviderError as exc:
            if any(marker in exc.message.lower() for marker in NOT_FOUND_MARKERS) and not exc.retryable:
                error = JobError(code=exc.code, message=exc.message)
                return TaskResult(task_id=task_id, status=TaskStatus.NOT_FOUND, error=error)
            raise
        raw = response.to_json_object() or {}
        return self.result_from_raw(task_id, raw)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        return outcome  # SIS answers with the transcript inline

    def claimed_task(self, body: str) -> str | None:
        """The SIS job id a callback's body claims: only ever used to ask SIS, never trusted."""
        try:
            data = json.loads(body) if body else None
        except (json.JSONDecodeError, RecursionError):
            return None
        claimed = data.get("job_id") if isinstance(data, dict) else None
        return claimed if isinstance(claimed, str) and 0 < len(claimed) <= MAX_TASK_ID_LENGTH else None

    @staticmethod
    def result_from_raw(task_id: str, raw: dict[str, Any]) -> TaskResult:
        parsed = SisJobResult.parse(raw)
        created_at = parsed.created_at
        if parsed.status == "FINISHED":
            outcome = FileOutcome(status=TaskStatus.DONE, transcript=transcript_from_sis(parsed), raw=raw)
        elif parsed.status == "ERROR":
            outcome = FileOutcome(status=TaskStatus.FAILED, raw=raw, error=parsed.failure)
        else:
            outcome = FileOutcome(status=TaskStatus.PENDING, raw=raw)
        return TaskResult(
            task_id=task_id,
            status=outcome.status,
            files=[outcome],
            error=outcome.error,
            created_at=created_at,
            audio_ms=parsed.audio_duration,
        )

    @staticmethod
    def _call(operation: Any) -> Any:
        import requests
        from huaweicloudsdkcore.exceptions import exceptions as sdk

        try:
            return operation()
        except sdk.ServiceResponseException as exc:
            code = exc.error_code or f"HTTP.{exc.status_code}"
            # 401/403 mean our credentials or permissions are wrong: a deployment problem, not the
            # file's. Retrying keeps the job waiting until someone fixes it (or its deadline).
            retryable = (
                code in RETRYABLE_SIS_CODES or exc.status_code in (401, 403, 429) or exc.status_code >= 500
            )
            raise ProviderError(
                code,
                exc.error_msg or str(exc),
                retryable=retryable,
                maybe_done=status_may_have_taken_effect(exc.status_code),
                over_capacity=code in OVER_CAPACITY_SIS_CODES or exc.status_code == 429,
            ) from exc
        except (sdk.SdkException, requests.exceptions.RequestException) as exc:
            # Connection failures and timeouts; the SDK lets read timeouts through unwrapped.
            message = getattr(exc, "error_msg", None) or str(exc) or type(exc).__name__
            raise ProviderError(
                "SIS.UNREACHABLE", message, retryable=True, maybe_done=request_may_have_arrived(exc)
            ) from exc

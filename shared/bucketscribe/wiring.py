"""Composition root: settings → real adapters → ``PipelinePorts``.

Function entry points call ``build_ports`` once per cold start. Provider
adapters (and the secrets they need) are built on first use, so a request
that never talks to a provider never reads its credentials.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from functools import cache

from pydantic import SecretStr

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.clouds.aws.job_store import DynamoJobStore
from bucketscribe.media.bucket import BucketMedia
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.pipeline.context import Limits, PipelinePorts
from bucketscribe.ports.provider import Provider
from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS, HuaweiCredentials
from bucketscribe.ports.secrets import MissingSecret, resolve_json_secret, resolve_secret
from bucketscribe.settings import RESULT_RETENTION_S, Settings
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.clouds.aws.storage import S3Storage


class LazyProviders(Mapping[str, Provider]):
    """Provider adapters built on first lookup, from named factories."""

    def __init__(self, factories: Mapping[str, Callable[[], Provider]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        if name not in self._built:
            self._built[name] = self._factories[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def sis_provider(settings: Settings) -> Provider:
    from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider

    if settings.sis_credentials_secret_name:
        stored = resolve_json_secret(settings.sis_credentials_secret_name, what="SIS credentials")
        ak, sk = stored.get("ak"), stored.get("sk")
        project_id = stored.get("project_id") or settings.sis_project_id
    else:
        ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK"), os.environ.get("HUAWEICLOUD_SDK_SK")
        project_id = settings.sis_project_id or os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID")
    if not (ak and sk and project_id):
        raise MissingSecret(
            "SIS credentials are not configured: set HUAWEICLOUD_SDK_AK, HUAWEICLOUD_SDK_SK and "
            "BUCKETSCRIBE_SIS_PROJECT_ID, or BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME"
        )
    credentials = SisCredentials(ak=ak, sk=SecretStr(sk), project_id=project_id)
    return SisProvider(
        credentials,
        region=settings.sis_region,
        endpoint=settings.sis_endpoint,
        decodes_any_media=settings.provider_decodes == "any",
    )


def dashscope_provider(settings: Settings) -> Provider:
    from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider

    api_key = resolve_secret(
        settings.dashscope_api_key, settings.dashscope_api_key_secret_name, what="the DashScope API key"
    )
    config = DashScopeConfig(
        api_key=SecretStr(api_key),
        base_http_url=settings.dashscope_base_url,
        workspace=settings.dashscope_workspace,
        max_files_per_task=settings.dashscope_max_files_per_task,
        throttle_backoff_s=settings.dashscope_throttle_backoff_s,
    )
    return DashScopeProvider(config, decodes_any_media=settings.provider_decodes == "any")


def realtime_provider(settings: Settings) -> Provider:
    from bucketscribe.providers.dashscope.realtime import (
        DEFAULT_WEBSOCKET_URL,
        DashScopeRealtimeProvider,
        RealtimeStreamer,
    )

    api_key = resolve_secret(
        settings.dashscope_api_key, settings.dashscope_api_key_secret_name, what="the DashScope API key"
    )
    streamer = RealtimeStreamer(
        api_key=api_key,
        websocket_url=settings.dashscope_ws_url or DEFAULT_WEBSOCKET_URL,
        workspace=settings.dashscope_workspace,
        # No task-finished long after the audio ended: give up within the stream's own budget.
        finish_timeout_s=float(settings.realtime_budget_s),
    )
    return DashScopeRealtimeProvider(streamer)


def callback_signer(settings: Settings) -> CallbackSigner:
    secret = resolve_secret(
        settings.callback_secret, settings.callback_secret_name, what="the callback secret"
    )
    previous = None
    if settings.callback_secret_previous or settings.callback_secret_previous_name:
        previous = resolve_secret(
            settings.callback_secret_previous,
            settings.callback_secret_previous_name,
            what="the previous callback secret",
        ).encode("utf-8")
    return CallbackSigner(secret.encode("utf-8"), previous=previous)


def object_storage(settings: Settings) -> ObjectStorage:
    if settings.storage == "obs":
        from bucketscribe.clouds.huawei.storage import ObsStorage

        # The agency's temporary key, which the FunctionGraph entry points hand over on every
        # invocation (renewed while the instance lives); elsewhere HUAWEICLOUD_SDK_AK/SK.
        return ObsStorage(
            server=settings.obs_server, region=settings.obs_region, credentials=AGENCY_CREDENTIALS.current
        )
    return S3Storage(endpoint_url=settings.aws_endpoint_url)


def job_store(settings: Settings) -> DynamoJobStore:
    """DynamoDB, or a DynamoDB-compatible endpoint (GeminiDB) with the key pair from its secret."""
    credentials = None
    if settings.jobs_credentials_secret_name:
        stored = resolve_json_secret(settings.jobs_credentials_secret_name, what="the job store credentials")
        ak, sk = stored.get("ak"), stored.get("sk")
        if not (isinstance(ak, str) and ak and isinstance(sk, str) and sk):
            raise MissingSecret(
                f"the job store credentials in secret {settings.jobs_credentials_secret_name!r} need "
                '"ak" and "sk" (for GeminiDB: a database user and its password)'
            )
        credentials = HuaweiCredentials(ak=ak, sk=SecretStr(sk))
    return DynamoJobStore(
        settings.jobs_table,
        endpoint_url=settings.jobs_endpoint_url or settings.aws_endpoint_url,
        region_name=settings.jobs_region,
        credentials=credentials,
    )


def build_ports(settings: Settings) -> PipelinePorts:
    storage = object_storage(settings)
    decoder = importlib.util.find_spec("av") and importlib.util.find_spec("numpy")
    return PipelinePorts(
        storage=storage,
        media_tools=BucketMedia(storage) if decoder else None,
        jobs=job_store(settings),
        providers=LazyProviders(
            {
                "sis": lambda: sis_provider(settings),
                "dashscope": lambda: dashscope_provider(settings),
                "dashscope-realtime": lambda: realtime_provider(settings),
            }
        ),
        signer=callback_signer(settings),
        layout=OutputLayout(input_prefix=settings.input_prefix, output_prefix=settings.output_prefix),
        profiles=settings.profile_set,
        callback_base_url=settings.callback_base_url,
        limits=limits(settings),
        dead_letters=dead_letters(settings, storage),
    )


def limits(settings: Settings) -> Limits:
    deadline = timedelta(seconds=settings.job_deadline_s)
    return Limits(
        max_media_bytes=settings.max_media_bytes,
        max_media_duration_s=settings.max_media_duration_s,
        presign_expiry_s=settings.presign_expiry_s,
        first_check_after=timedelta(seconds=settings.first_check_after_s),
        max_check_interval=timedelta(seconds=settings.max_check_interval_s),
        job_deadline=deadline,
        claim_lease=timedelta(seconds=settings.claim_lease_s),
        submit_retry_after=timedelta(seconds=settings.submit_retry_after_s),
        max_submit_attempts=settings.max_submit_attempts,
        max_provider_jobs=settings.max_provider_jobs,
        search_delay=timedelta(seconds=settings.search_delay_s),
        evidence_wait=timedelta(seconds=settings.evidence_wait_s),
        # A callback can come until the provider drops the result after the deadline.
        callback_token_ttl=deadline + timedelta(seconds=max(RESULT_RETENTION_S.values())),
        realtime_budget=timedelta(seconds=settings.realtime_budget_s),
    )


def dead_letters(settings: Settings, storage: ObjectStorage) -> DeadLetters | None:
    """Upload events that failed every delivery: the SQS dead-letter queue on AWS, FunctionGraph's
    failure records in OBS on Huawei Cloud; none where nothing collects them."""
    if settings.dead_letter_queue_url:
        from bucketscribe.clouds.aws.dead_letters import SqsDeadLetters

        return SqsDeadLetters(settings.dead_letter_queue_url, endpoint_url=settings.aws_endpoint_url)
    if settings.failed_invocations_bucket:
        from bucketscribe.clouds.huawei.failed_invocations import FailedInvocations
        from bucketscribe.clouds.huawei.storage import ObsStorage

        # Settings refuse a failure bucket without OBS storage, so this is the OBS adapter.
        assert isinstance(storage, ObsStorage)
        bucket, prefix = settings.failed_invocations_bucket, settings.failed_invocations_prefix
        return FailedInvocations(storage, bucket, prefix)
    return None


class MisconfiguredDeployment(RuntimeError):
    """The deployment's settings contradict what the platform really has; the function refuses to run."""


def check_upload_queue(settings: Settings) -> None:
    """Refuse to run when the claim lease is not shorter than the upload queue's real visibility
    timeout (read from the queue itself, not from a copy of it in the environment)."""
    if not settings.upload_queue_url:
        return
    from bucketscribe.clouds.aws.dead_letters import visibility_timeout_s

    visibility = visibility_timeout_s(settings.upload_queue_url, endpoint_url=settings.aws_endpoint_url)
    if (problem := settings.claim_lease_problem(visibility)) is not None:
        raise MisconfiguredDeployment(problem)


@cache
def upload_queue_checked() -> None:
    """``check_upload_queue`` once per cold start of the function the queue feeds."""
    check_upload_queue(environment_settings())


@cache
def environment_settings() -> Settings:
    """The settings of this process (a function instance), read once per cold start."""
    return Settings()


@cache
def environment_ports() -> PipelinePorts:
    """The adapters of this process, built once per cold start and reused by warm invocations."""
    return build_ports(environment_settings())

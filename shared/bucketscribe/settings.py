"""Settings read from the environment (``BUCKETSCRIBE_*``), validated once per cold start.

Secrets never live in plain settings fields that get logged: they are
``SecretStr`` and may instead name a secret in a secret store (``*_SECRET_NAME``),
resolved by ``bucketscribe.ports.secrets``.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bucketscribe.domain.profile import Profile, ProfileSet

# SIS promises a result within 6 h and DashScope may queue for hours; the media
# URL must outlive both, or the provider fetches an expired link.
DEFAULT_PRESIGN_EXPIRY_S = 12 * 3600
# What each provider promises or keeps (providers.md §1.6, §4.5).
SIS_RESULT_WITHIN_S = 6 * 3600
RESULT_RETENTION_S = {"sis": 72 * 3600, "dashscope": 24 * 3600}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUCKETSCRIBE_", extra="ignore")

    # Where things are
    jobs_table: str = "bucketscribe-jobs"
    input_prefix: str = "incoming/"
    output_prefix: str = "transcripts/"
    aws_endpoint_url: str | None = None
    # "obs": Huawei OBS through esdk-obs-python (a FunctionGraph deployment); credentials from
    # HUAWEICLOUD_SDK_AK / HUAWEICLOUD_SDK_SK, as for SIS.
    storage: Literal["s3", "obs"] = "s3"
    obs_server: str | None = None
    obs_region: str = "cn-north-4"
    # The job store's DynamoDB endpoint when it is not AWS's: a GeminiDB DynamoDB-compatible
    # instance (its load-balancer address inside the VPC) on Huawei Cloud.
    jobs_endpoint_url: str | None = None
    # The access key pair that endpoint checks, as a secret {"ak": ..., "sk": ...}: for GeminiDB a
    # database user and its password. Unset: boto3's own chain (the function's role on AWS).
    jobs_credentials_secret_name: str | None = None
    # The signing region boto3 needs there (Huawei's GeminiDB sample passes a placeholder name).
    jobs_region: str | None = None
    # Huawei Cloud: where FunctionGraph writes upload events whose retries all failed (the submit
    # function's failure destination); the reconciler settles them as it settles dead letters.
    failed_invocations_bucket: str | None = None
    failed_invocations_prefix: str = "failed-invocations/submit/"

    # Where ``*_SECRET_NAME`` secrets live: AWS Secrets Manager, or Huawei CSMS (DEW), read with
    # the function's agency credentials (see bucketscribe.ports.secrets).
    secret_store: Literal["aws", "csms"] = "aws"  # noqa: S105 - a store name
    csms_region: str = "cn-north-4"
    csms_endpoint: str | None = None
    # The project the secrets belong to; FunctionGraph sets RUNTIME_PROJECT_ID for the function's.
    csms_project_id: str | None = None

    # Callbacks
    callback_base_url: str = "http://127.0.0.1:8080"
    callback_secret: SecretStr | None = None
    callback_secret_name: str | None = None
    # During a rotation the previous secret still verifies callback URLs handed out before it.
    callback_secret_previous: SecretStr | None = None
    callback_secret_previous_name: str | None = None
    status_api_token: SecretStr | None = None
    status_api_token_secret_name: str | None = None
    max_callback_body_bytes: int = 2 * 1024 * 1024

    # Media
    presign_expiry_s: int = Field(default=DEFAULT_PRESIGN_EXPIRY_S, ge=60, le=7 * 24 * 3600)
    # The largest upload taken at all (the providers' own limits are theirs: an upload over
    # them is cut into parts, see pipeline/parts.py).
    max_media_bytes: int = 4 * 1024**3
    max_media_duration_s: int = 24 * 3600
    # What the providers' endpoints decode: "documented" (the services' published formats), or
    # "any" where the endpoint is an engine of our own that reads whatever ffmpeg reads (the local
    # emulators): then every upload goes to it as it is, within the size and length limits.
    provider_decodes: Literal["documented", "any"] = "documented"

    # Profiles: inline JSON (``[{"name": ..., "prefix": ..., ...}]``) or a JSON file
    profiles: str | None = None
    profiles_file: Path | None = None

    # Completion checks (the reconciler)
    first_check_after_s: int = Field(default=600, ge=0)
    max_check_interval_s: int = Field(default=1800, ge=1)
    job_deadline_s: int = Field(default=12 * 3600, ge=60)
    claim_lease_s: int = Field(default=300, ge=1)
    # The queue that feeds the submit function (AWS): its real visibility timeout is read once per
    # cold start, and the claim lease must be shorter, so a dead worker's redelivered message finds
    # its lease run out (``claim_lease_problem``).
    upload_queue_url: str | None = None
    dead_letter_queue_url: str | None = None
    reconcile_batch: int = Field(default=500, ge=1)
    submit_retry_after_s: int = Field(default=60, ge=1)
    max_submit_attempts: int = Field(default=8, ge=1)
    # Provider jobs (each one billed) one upload may cost before it fails instead (re-drive to pay again).
    max_provider_jobs: int = Field(default=2, ge=1)
    search_delay_s: int = Field(default=30, ge=0)
    evidence_wait_s: int = Field(default=3600, ge=1)

    # Huawei SIS
    sis_region: str = "cn-north-4"
    sis_endpoint: str | None = None
    sis_project_id: str | None = None
    sis_credentials_secret_name: str | None = None

    # Alibaba DashScope
    dashscope_api_key: SecretStr | None = None
    dashscope_api_key_secret_name: str | None = None
    dashscope_base_url: str | None = None
    # The real-time WebSocket endpoint (default: DashScope's own, wss://dashscope.aliyuncs.com/…).
    dashscope_ws_url: str | None = None
    dashscope_workspace: str | None = None
    dashscope_max_files_per_task: int = Field(default=100, ge=1, le=100)
    dashscope_throttle_backoff_s: float = Field(default=0.5, ge=0)
    # The EventBridge HTTP target sends this in the header below (an API-destination connection
    # with API-key auth); pushes without it are refused.
    push_token: SecretStr | None = None
    push_token_secret_name: str | None = None
    push_token_header: str = "x-bucketscribe-push-token"  # noqa: S105 - a header name, not a secret
    push_max_skew_s: int = Field(default=60, ge=1)
    # Real-time mode: how long the submit worker may spend streaming one upload (the submit
    # function's timeout, 300 s, less the margin it keeps). Longer uploads are refused for the
    # mode or, where the profile says so, sent to DashScope file transcription.
    realtime_budget_s: int = Field(default=240, ge=10)

    @field_validator("input_prefix", "output_prefix")
    @classmethod
    def _prefix_ends_with_slash(cls, value: str) -> str:
        if value and not value.endswith("/"):
            value += "/"
        return value

    @field_validator("callback_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        """Refuse settings that contradict each other, naming both and why."""
        problems = []
        if self.first_check_after_s > self.max_check_interval_s:
            problems.append(
                "BUCKETSCRIBE_FIRST_CHECK_AFTER_S must not exceed BUCKETSCRIBE_MAX_CHECK_INTERVAL_S"
            )
        if self.evidence_wait_s >= self.job_deadline_s:
            problems.append(
                f"BUCKETSCRIBE_EVIDENCE_WAIT_S ({self.evidence_wait_s}) must be shorter than the job "
                f"deadline ({self.job_deadline_s}): a lost submission would fail before it is retried"
            )
        for provider in self.providers_in_use & RESULT_RETENTION_S.keys():
            retention = RESULT_RETENTION_S[provider]
            if self.job_deadline_s > retention:
                problems.append(
                    f"BUCKETSCRIBE_JOB_DEADLINE_S ({self.job_deadline_s}) is longer than {provider} keeps "
                    f"results ({retention} s): a job could wait for a result already deleted"
                )
        if "sis" in self.providers_in_use and self.presign_expiry_s < SIS_RESULT_WITHIN_S:
            problems.append(
                f"BUCKETSCRIBE_PRESIGN_EXPIRY_S ({self.presign_expiry_s}) is shorter than the "
                f"{SIS_RESULT_WITHIN_S} s in which SIS promises to fetch and transcribe a file"
            )
        if "dashscope" in self.providers_in_use and self.presign_expiry_s < self.job_deadline_s:
            problems.append(
                f"BUCKETSCRIBE_PRESIGN_EXPIRY_S ({self.presign_expiry_s}) is shorter than the job deadline "
                f"({self.job_deadline_s}): DashScope queues without a promise and could fetch an expired link"
            )
        if self.failed_invocations_bucket and self.storage != "obs":
            problems.append(
                "BUCKETSCRIBE_FAILED_INVOCATIONS_BUCKET names FunctionGraph's failure records in OBS: "
                "it needs BUCKETSCRIBE_STORAGE=obs"
            )
        if self.failed_invocations_bucket and self.failed_invocations_prefix.startswith(self.input_prefix):
            problems.append(
                f"BUCKETSCRIBE_FAILED_INVOCATIONS_PREFIX ({self.failed_invocations_prefix}) lies under the "
                f"input prefix ({self.input_prefix}): every failure record would start the submit function"
            )
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def claim_lease_problem(self, visibility_timeout_s: int) -> str | None:
        """Why the claim lease does not fit the upload queue's real visibility timeout, if it does not."""
        if self.claim_lease_s < visibility_timeout_s:
            return None
        return (
            f"BUCKETSCRIBE_CLAIM_LEASE_S ({self.claim_lease_s}) must be shorter than the upload queue's "
            f"visibility timeout ({visibility_timeout_s} s): a crashed worker's message would come back "
            "while its claim still holds"
        )

    @property
    def providers_in_use(self) -> set[str]:
        return {provider for profile in self.profile_set.profiles for provider in profile.providers_used}

    @cached_property
    def profile_set(self) -> ProfileSet:
        if self.profiles:
            raw = self.profiles
        elif self.profiles_file:
            raw = self.profiles_file.read_text(encoding="utf-8")
        else:
            return ProfileSet(profiles=[Profile()])
        data = json.loads(raw)
        if isinstance(data, dict):
            data = data.get("profiles", data)
        return ProfileSet(profiles=[Profile.model_validate(p) for p in data])

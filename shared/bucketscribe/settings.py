"""Settings read from the environment (``BUCKETSCRIBE_*``), validated once per cold start.

These are the deployment's own: where things are, how long things may take, the secrets every
cloud and provider shares. A cloud's settings are read by its folder (``clouds/<name>/settings.py``)
and a provider's by its folder (``providers/<name>/settings.py``), under the same prefix.

Secrets never live in plain settings fields that get logged: they are ``SecretStr`` and may
instead name a secret in the cloud's secret store (``*_SECRET_NAME``, ``ports.secrets``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

# The media URL must outlive the providers' queues (a result within hours, or queued without a
# promise): each provider checks this against its own promise.
DEFAULT_PRESIGN_EXPIRY_S = 12 * 3600
# Where a deployed function's code lies; a relative profiles file is read from there.
CODE_ROOT_VARIABLES = ("LAMBDA_TASK_ROOT", "RUNTIME_CODE_ROOT")

# Settings of earlier releases that now mean something else: refused by name rather than ignored,
# since a deploy that still sets them would otherwise run on the default cloud's adapters.
RETIRED_VARIABLES = ("BUCKETSCRIBE_STORAGE", "BUCKETSCRIBE_SECRET_STORE")


class EnvironmentSettings(BaseModel):
    """Settings read from environment variables named ``<env_prefix><FIELD>`` (in any case);
    values given to the constructor win over the environment.

    Every field is a scalar (text, number, flag, secret), so reading them takes no more than this;
    pydantic-settings, which did the same, cost ~150 ms of every cold start to import.
    """

    model_config = ConfigDict(extra="ignore")
    env_prefix: ClassVar[str] = "BUCKETSCRIBE_"

    def __init__(self, **values: Any) -> None:
        super().__init__(**{**self.environment_values(), **values})

    @classmethod
    def environment_values(cls) -> dict[str, str]:
        prefix = cls.env_prefix.lower()
        found: dict[str, str] = {}
        for name, value in os.environ.items():
            field = name.lower().removeprefix(prefix)
            if field != name.lower() and field in cls.model_fields:
                found[field] = value
        return found


class Settings(EnvironmentSettings):
    # Which cloud's adapters run the functions (``clouds/registry.py``; unset: its default).
    cloud: str | None = None

    # Where things are
    jobs_table: str = "bucketscribe-jobs"
    input_prefix: str = "incoming/"
    output_prefix: str = "transcripts/"

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
    # A provider's task-finished push carries this in the header below (the push connection's API
    # key, see docs/deploy.md); pushes without it are refused.
    push_token: SecretStr | None = None
    push_token_secret_name: str | None = None
    push_token_header: str = "x-bucketscribe-push-token"  # noqa: S105 - a header name, not a secret
    push_max_skew_s: int = Field(default=60, ge=1)

    # Media
    presign_expiry_s: int = Field(default=DEFAULT_PRESIGN_EXPIRY_S, ge=60, le=7 * 24 * 3600)
    # The largest upload taken at all (the providers' own limits are theirs: an upload over
    # them is cut into parts, see pipeline/steps/parts.py).
    max_media_bytes: int = 4 * 1024**3
    max_media_duration_s: int = 24 * 3600
    # The largest object a function makes for a provider (a converted track, one part of a long
    # upload), below the provider's own limit where the function's scratch space is smaller: it
    # goes through local disk, where a timed-out run may have left one behind (FunctionGraph gives
    # a zip-packaged function 512 MB of /tmp). Unset: the provider's limit.
    max_part_bytes: int | None = Field(default=None, ge=1_000_000)
    # What the providers' endpoints decode: "documented" (the services' published formats), or
    # "any" where the endpoint is an engine of our own that reads whatever ffmpeg reads (the local
    # emulators): then every upload goes to it as it is, within the size and length limits.
    provider_decodes: Literal["documented", "any"] = "documented"

    # Profiles: inline JSON (``[{"name": ..., "prefix": ..., ...}]``) or a JSON file; an empty
    # BUCKETSCRIBE_PROFILES means "use the file" (the deploys set both).
    profiles: str | None = None
    profiles_file: Path | None = None

    # Completion checks (the reconciler)
    first_check_after_s: int = Field(default=600, ge=0)
    max_check_interval_s: int = Field(default=1800, ge=1)
    job_deadline_s: int = Field(default=12 * 3600, ge=60)
    claim_lease_s: int = Field(default=300, ge=1)
    reconcile_batch: int = Field(default=500, ge=1)
    submit_retry_after_s: int = Field(default=60, ge=1)
    max_submit_attempts: int = Field(default=8, ge=1)
    # How long an upload may wait for a provider whose quota is full (a burst larger than it).
    capacity_retry_after_s: int = Field(default=60, ge=1)
    capacity_wait_s: int = Field(default=72 * 3600, ge=60)
    # Provider jobs (each one billed) one upload may cost before it fails instead (re-drive to pay again).
    max_provider_jobs: int = Field(default=2, ge=1)
    search_delay_s: int = Field(default=30, ge=0)
    evidence_wait_s: int = Field(default=3600, ge=1)
    # How many of an invocation's uploads are worked on at once (1: one after another).
    side_by_side: int = Field(default=16, ge=1, le=64)

    # Real-time mode: how long the submit worker may spend streaming one upload (the submit
    # function's timeout, 300 s, less the margin it keeps). Longer uploads are refused for the
    # mode or, where the profile says so, handed to a file-transcription provider.
    realtime_budget_s: int = Field(default=240, ge=10)

    # Webhooks (Standard Webhooks, signed): the default profile's receiver (a profile may name its
    # own, ``webhook_url``) and the signing secret, ``whsec_…``, given directly (local runs) or
    # named in the secret store (a profile may name its own, ``webhook_secret_name``).
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_secret_name: str | None = None
    # Receivers on private, loopback or link-local addresses, and plain http://: refused unless
    # this is set (a local receiver, a test); they are what a forged request would aim at.
    webhook_allow_private: bool = False
    # How long one attempt may wait to connect, and then for each read of the answer.
    webhook_timeout_s: float = Field(default=5.0, gt=0, le=20)

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
        """Refuse settings that contradict each other, naming both and why (a cloud's and a
        provider's own contradictions are theirs to find: ``wiring.checked_settings``)."""
        problems = [
            f"{name} is no longer read: set BUCKETSCRIBE_CLOUD (which cloud's storage, job store and "
            "secret store) instead"
            for name in RETIRED_VARIABLES
            if name in os.environ
        ]
        if self.first_check_after_s > self.max_check_interval_s:
            problems.append(
                "BUCKETSCRIBE_FIRST_CHECK_AFTER_S must not exceed BUCKETSCRIBE_MAX_CHECK_INTERVAL_S"
            )
        if self.evidence_wait_s >= self.job_deadline_s:
            problems.append(
                f"BUCKETSCRIBE_EVIDENCE_WAIT_S ({self.evidence_wait_s}) must be shorter than the job "
                f"deadline ({self.job_deadline_s}): a lost submission would fail before it is retried"
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

    def raw_profiles(self) -> list[dict[str, Any]] | None:
        """The profiles as written (inline JSON, else the file), before any provider has checked
        them; ``None`` when none are given."""
        if self.profiles:
            text = self.profiles
        elif self.profiles_file:
            text = self._profiles_path().read_text(encoding="utf-8")
        else:
            return None
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("profiles", data)
        if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
            raise ValueError("the profiles must be a JSON list of objects")
        return data

    def _profiles_path(self) -> Path:
        """A relative profiles file is the one packaged with the function (the deploys ship it
        beside the code), not one in whatever folder the runtime started in."""
        path = self.profiles_file
        assert path is not None
        if path.is_absolute() or path.exists():
            return path
        for variable in CODE_ROOT_VARIABLES:
            root = os.environ.get(variable)
            if root and (Path(root) / path).exists():
                return Path(root) / path
        return path


class MisconfiguredDeployment(RuntimeError):
    """The deployment's settings contradict what the platform really has: the function refuses to run."""

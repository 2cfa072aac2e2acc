"""Secrets come from the environment or a secret store, never from code or logs.

A setting ``X`` may be given directly (local runs, tests) or as ``X_SECRET_NAME``, the name of
a secret in the store that ``BUCKETSCRIBE_SECRET_STORE`` selects:

- ``aws`` (the default): AWS Secrets Manager, read through Powertools parameters;
- ``csms``: Huawei Cloud CSMS (part of DEW), read through ``huaweicloudsdkcsms`` and signed with
  the function's agency credentials (a temporary AK/SK and security token).

Either way a value is cached for five minutes, so a rotation takes effect without a redeploy.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

if TYPE_CHECKING:
    from bucketscribe.settings import Settings

SECRET_CACHE_SECONDS = 300
# CSMS answers a name it does not know with HTTP 400 and this code (DEW API reference, error codes).
CSMS_SECRET_NOT_FOUND = "CSMS.0106"  # noqa: S105 - an error code, not a secret


class MissingSecret(RuntimeError):
    """A required secret is configured nowhere: refuse to run rather than run open."""


class SecretStore(Protocol):
    def get(self, name: str) -> str | None:
        """The current value of secret ``name``; ``None`` when the store holds no value for it."""
        ...


class AwsSecretsManager:
    """AWS Secrets Manager through Powertools parameters, which cache each value."""

    def get(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities import parameters

        fetched = parameters.get_secret(name, max_age=SECRET_CACHE_SECONDS)
        if isinstance(fetched, bytes):
            fetched = fetched.decode("utf-8")
        return str(fetched) if fetched else None


class HuaweiCredentials(BaseModel):
    """An access key pair, temporary (with a security token) when it comes from an agency."""

    model_config = ConfigDict(frozen=True)

    ak: str
    sk: SecretStr
    security_token: SecretStr | None = None

    @classmethod
    def from_context(cls, context: Any) -> HuaweiCredentials:
        """The agency credentials FunctionGraph hands a function in its context object (valid
        24 h, renewed by FunctionGraph; the older getAccessKey/getSecretKey are deprecated)."""
        return cls(
            ak=context.getSecurityAccessKey(),
            sk=SecretStr(context.getSecuritySecretKey()),
            security_token=SecretStr(context.getSecurityToken()),
        )

    @classmethod
    def from_environment(cls) -> HuaweiCredentials | None:
        """The Huawei SDKs' own variables: HUAWEICLOUD_SDK_AK, _SK and, for a temporary key,
        HUAWEICLOUD_SDK_SECURITY_TOKEN."""
        ak, sk = os.environ.get("HUAWEICLOUD_SDK_AK"), os.environ.get("HUAWEICLOUD_SDK_SK")
        if not (ak and sk):
            return None
        token = os.environ.get("HUAWEICLOUD_SDK_SECURITY_TOKEN")
        return cls(ak=ak, sk=SecretStr(sk), security_token=SecretStr(token) if token else None)


class AgencyCredentials:
    """The credentials this process acts with on Huawei Cloud.

    FunctionGraph passes its agency's temporary key only in each invocation's context, so the
    FunctionGraph entry points hand it over here (``remember``) before any use case runs; outside
    FunctionGraph the SDK environment variables serve.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._remembered: HuaweiCredentials | None = None

    def remember(self, credentials: HuaweiCredentials) -> None:
        with self._lock:
            self._remembered = credentials

    def forget(self) -> None:
        """Back to the environment's credentials (a process that leaves FunctionGraph's shape)."""
        with self._lock:
            self._remembered = None

    def current(self) -> HuaweiCredentials:
        with self._lock:
            remembered = self._remembered
        credentials = remembered or HuaweiCredentials.from_environment()
        if credentials is None:
            raise MissingSecret(
                "Huawei Cloud credentials are not available: run in FunctionGraph with an agency, "
                "or set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"
            )
        return credentials


AGENCY_CREDENTIALS = AgencyCredentials()


class CsmsSecretStore:
    """Huawei Cloud CSMS: the latest version of a secret (``ShowSecretVersion`` with version
    ``latest``), cached ``max_age_s`` seconds per name.

    The SDK client is rebuilt whenever the credentials change, because an agency's temporary key
    is renewed while a function instance lives on.
    """

    def __init__(
        self,
        *,
        project_id: str,
        region: str = "cn-north-4",
        endpoint: str | None = None,
        credentials: Callable[[], HuaweiCredentials] = AGENCY_CREDENTIALS.current,
        max_age_s: float = SECRET_CACHE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: tuple[float, float] = (5.0, 10.0),
    ) -> None:
        self._project_id = project_id
        self._region = region
        self._endpoint = endpoint
        self._credentials = credentials
        self._max_age_s = max_age_s
        self._clock = clock
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, str | None]] = {}
        self._client: Any = None
        self._client_credentials: HuaweiCredentials | None = None

    def get(self, name: str) -> str | None:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(name)
        if cached is not None and now < cached[0]:
            return cached[1]
        value = self._fetch(name)
        with self._lock:
            self._cache[name] = (now + self._max_age_s, value)
        return value

    def _fetch(self, name: str) -> str | None:
        from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
        from huaweicloudsdkcsms.v1 import ShowSecretVersionRequest

        request = ShowSecretVersionRequest(secret_name=name, version_id="latest")
        try:
            version = self._sdk_client().show_secret_version(request).version
        except ClientRequestException as exc:
            if exc.error_code == CSMS_SECRET_NOT_FOUND:
                return None
            raise
        if version is None:
            return None
        return version.secret_string or None

    def _sdk_client(self) -> Any:
        credentials = self._credentials()
        if self._client is not None and credentials == self._client_credentials:
            return self._client
        from huaweicloudsdkcore.auth.credentials import BasicCredentials
        from huaweicloudsdkcore.http.http_config import HttpConfig
        from huaweicloudsdkcsms.v1 import CsmsClient
        from huaweicloudsdkcsms.v1.region.csms_region import CsmsRegion

        sdk_credentials = BasicCredentials(
            credentials.ak, credentials.sk.get_secret_value(), self._project_id
        )
        if credentials.security_token is not None:
            sdk_credentials = sdk_credentials.with_security_token(
                credentials.security_token.get_secret_value()
            )
        config = HttpConfig.get_default_config()
        config.timeout = self._timeout_s
        builder = CsmsClient.new_builder().with_credentials(sdk_credentials).with_http_config(config)
        if self._endpoint:
            builder = builder.with_endpoint(self._endpoint)
        else:
            builder = builder.with_region(CsmsRegion.value_of(self._region))
        self._client, self._client_credentials = builder.build(), credentials
        return self._client


def secret_store_for(settings: Settings) -> SecretStore:
    if settings.secret_store == "csms":  # noqa: S105 - a store name
        project_id = (
            settings.csms_project_id
            or os.environ.get("RUNTIME_PROJECT_ID")
            or os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID")
        )
        if not project_id:
            raise MissingSecret(
                "the CSMS project is not configured: set BUCKETSCRIBE_CSMS_PROJECT_ID "
                "(FunctionGraph sets RUNTIME_PROJECT_ID)"
            )
        return CsmsSecretStore(
            project_id=project_id, region=settings.csms_region, endpoint=settings.csms_endpoint
        )
    return AwsSecretsManager()


@cache
def process_secret_store() -> SecretStore:
    """The store this process's settings name, built once per cold start."""
    from bucketscribe.settings import Settings

    return secret_store_for(Settings())


def resolve_secret(
    value: SecretStr | None, secret_name: str | None, *, what: str, store: SecretStore | None = None
) -> str:
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if secret_name:
        fetched = (store or process_secret_store()).get(secret_name)
        if fetched:
            return fetched
    raise MissingSecret(f"{what} is not configured: set it in the environment or name a secret store entry")


def resolve_json_secret(secret_name: str, *, what: str, store: SecretStore | None = None) -> dict[str, Any]:
    raw = resolve_secret(None, secret_name, what=what, store=store)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MissingSecret(f"{what} in secret {secret_name!r} is not JSON") from exc
    if not isinstance(data, dict):
        raise MissingSecret(f"{what} in secret {secret_name!r} is not a JSON object")
    return data

"""The access keys the Huawei Cloud adapters sign with: the function's agency key (temporary, handed
over by the FunctionGraph entry points on each invocation) or the SDKs' environment variables."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from bucketscribe.ports.secrets import MissingSecret


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


def sdk_client(
    client_class: Any,
    region_class: Any,
    credentials: HuaweiCredentials,
    project_id: str | None,
    *,
    endpoint: str | None,
    region: str,
    timeout_s: float | tuple[float, float],
) -> Any:
    """A Huawei Cloud SDK client (CSMS, SMN, ...) signing with ``credentials``: at ``endpoint``
    where one is set (an emulator, a private endpoint), else the region's. ``timeout_s``: seconds,
    or (connect, read)."""
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.http.http_config import HttpConfig

    signing = BasicCredentials(credentials.ak, credentials.sk.get_secret_value(), project_id)
    if credentials.security_token is not None:
        signing = signing.with_security_token(credentials.security_token.get_secret_value())
    config = HttpConfig.get_default_config()
    config.timeout = timeout_s
    # A connection for each upload worked on at once (Limits.side_by_side, at most 64).
    config.pool_maxsize = 64
    builder = client_class.new_builder().with_credentials(signing).with_http_config(config)
    if endpoint:
        return builder.with_endpoint(endpoint).build()
    return builder.with_region(region_class.value_of(region)).build()


class ClientPerKey:
    """One SDK client, made again whenever the credentials change: an agency's temporary key is
    renewed while a function instance lives on. Safe to share between the uploads an invocation
    works on side by side."""

    def __init__(self, make: Callable[[HuaweiCredentials], Any]) -> None:
        self._make = make
        self._lock = threading.Lock()
        self._client: Any = None
        self._made_with: HuaweiCredentials | None = None

    def client(self, credentials: HuaweiCredentials) -> Any:
        with self._lock:
            if self._client is None or credentials != self._made_with:
                self._client, self._made_with = self._make(credentials), credentials
            return self._client


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

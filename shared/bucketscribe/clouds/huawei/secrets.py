"""Huawei Cloud CSMS (part of DEW), the Huawei cloud's secret store, read through
``huaweicloudsdkcsms`` and signed with the function's agency credentials."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bucketscribe.clouds.huawei.credentials import (
    AGENCY_CREDENTIALS,
    ClientPerKey,
    HuaweiCredentials,
    sdk_client,
)
from bucketscribe.ports.secrets import SECRET_CACHE_SECONDS

# CSMS answers a name it does not know with HTTP 400 and this code (DEW API reference, error codes).
CSMS_SECRET_NOT_FOUND = "CSMS.0106"  # noqa: S105 - an error code, not a secret


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
        self._clients = ClientPerKey(self._new_client)

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
        return self._clients.client(self._credentials())

    def _new_client(self, credentials: HuaweiCredentials) -> Any:
        from huaweicloudsdkcsms.v1 import CsmsClient
        from huaweicloudsdkcsms.v1.region.csms_region import CsmsRegion

        return sdk_client(
            CsmsClient,
            CsmsRegion,
            credentials,
            self._project_id,
            endpoint=self._endpoint,
            region=self._region,
            timeout_s=self._timeout_s,
        )

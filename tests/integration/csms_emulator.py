"""A CSMS-compatible endpoint for the real ``huaweicloudsdkcsms`` SDK: ``ShowSecretVersion``.

``GET /v1/{project_id}/secrets/{secret_name}/versions/{version_id}`` answers the version's
``secret_string`` (``latest`` is the newest version). Every request must carry the SDK's
``SDK-HMAC-SHA256`` signature, checked by the SIS emulator's ``authenticate`` (imported, not
copied), and, for a temporary key, the security token issued with it, itself a signed header.
Errors use CSMS's documented codes: ``CSMS.0106`` for an unknown secret name.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime
from typing import TYPE_CHECKING, cast

from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.sis_server.models import SisError
from bucketscribe_local.sis_server.responses import authenticate

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.clouds.huawei.secrets import CSMS_SECRET_NOT_FOUND

if TYPE_CHECKING:
    from bucketscribe_local.sis_server.models import SisBackend

_VERSION_PATH = "/v1/{project_id}/secrets/{secret_name}/versions/{version_id}"


class IssuedKeys:
    """The access keys this endpoint accepts, each with the security token it was issued with."""

    def __init__(self) -> None:
        self._keys: dict[str, HuaweiCredentials] = {}

    def issue(self, credentials: HuaweiCredentials) -> None:
        self._keys[credentials.ak] = credentials

    def revoke(self, ak: str) -> None:
        self._keys.pop(ak, None)

    def secret_for(self, ak: str) -> str | None:
        issued = self._keys.get(ak)
        return issued.sk.get_secret_value() if issued else None

    def token_for(self, ak: str) -> str | None:
        issued = self._keys.get(ak)
        return issued.security_token.get_secret_value() if issued and issued.security_token else None


class CsmsEmulator:
    def __init__(self, *, project_id: str, credentials: HuaweiCredentials) -> None:
        self.project_id = project_id
        self.keys = IssuedKeys()
        self.keys.issue(credentials)
        self.reads: Counter[str] = Counter()
        self.refused: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._versions: dict[str, list[str]] = {}
        app = web.Application()
        app.router.add_get(_VERSION_PATH, self._show_secret_version)
        self._server = BackgroundHttpServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def put_secret(self, name: str, value: str) -> None:
        """Add a version (``CreateSecretVersion``): it becomes ``latest``."""
        with self._lock:
            self._versions.setdefault(name, []).append(value)

    async def _show_secret_version(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            # authenticate() asks its key store only for secret_for(ak): IssuedKeys has that.
            ak = authenticate(request, body, cast("SisBackend", self.keys), datetime.now(UTC))
            self._check_token(request, ak)
        except SisError as error:
            self.refused[error.error_code] += 1
            return web.json_response(error.body(), status=error.http_status)
        if request.match_info["project_id"] != self.project_id:
            return _error(403, "CSMS.0401", "the project does not match the credentials")
        name, version_id = request.match_info["secret_name"], request.match_info["version_id"]
        with self._lock:
            self.reads[name] += 1
            versions = list(self._versions.get(name, []))
        if not versions:
            return _error(400, CSMS_SECRET_NOT_FOUND, "The secret name not found int the db.")
        number = len(versions) if version_id == "latest" else int(version_id.removeprefix("v"))
        return web.json_response(
            {
                "version": {
                    "version_metadata": {
                        "id": f"v{number}",
                        "secret_name": name,
                        "version_stages": ["SYSCURRENT"] if number == len(versions) else [],
                    },
                    "secret_string": versions[number - 1],
                }
            }
        )

    def _check_token(self, request: web.Request, ak: str) -> None:
        expected = self.keys.token_for(ak)
        if expected is None:
            return
        signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        if "x-security-token" not in signed or request.headers.get("X-Security-Token") != expected:
            raise SisError(401, "APIGW.0301", "Incorrect IAM authentication information: security token")

    def __enter__(self) -> CsmsEmulator:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error_code": code, "error_msg": message}, status=status)

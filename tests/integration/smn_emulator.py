"""An SMN-compatible endpoint for the real ``huaweicloudsdksmn`` SDK: ``PublishMessage``.

``POST /v2/{project_id}/notifications/topics/{topic_urn}/publish`` takes
``{"subject", "message" | "message_structure" | "message_template_name", ...}`` and answers
``{"request_id", "message_id"}``. Every request must carry the SDK's ``SDK-HMAC-SHA256``
signature, checked by the SIS emulator's ``authenticate`` (imported, not copied), and, for a
temporary key, the security token issued with it, itself a signed header. What SMN documents is
checked: the subject's 512 bytes, the message's 256 KB, one of the three ways of giving it, a
topic of the project (``SMN.0006`` "Topic not found." otherwise, HTTP 404).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.sis_server.models import SisError
from bucketscribe_local.sis_server.responses import authenticate

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from tests.integration.csms_emulator import IssuedKeys

if TYPE_CHECKING:
    from bucketscribe_local.sis_server.models import SisBackend

_PUBLISH_PATH = "/v2/{project_id}/notifications/topics/{topic_urn}/publish"
# SMN's own code for a topic it does not know; the other refusals here carry a code of ours (the
# adapter reads every refusal alike).
TOPIC_NOT_FOUND = "SMN.0006"
REFUSED = "EMULATOR.REFUSED"
MAX_SUBJECT_BYTES = 512
MAX_MESSAGE_BYTES = 256 * 1024
_BODY_FIELDS = {
    "subject",
    "message",
    "message_structure",
    "message_template_name",
    "tags",
    "time_to_live",
    "message_attributes",
    "locale",
}


@dataclass(frozen=True)
class Published:
    topic_urn: str
    subject: str | None
    message: str


class SmnEmulator:
    def __init__(
        self, *, project_id: str, credentials: HuaweiCredentials, region: str = "cn-north-4"
    ) -> None:
        self.project_id = project_id
        self.region = region
        self.keys = IssuedKeys()
        self.keys.issue(credentials)
        self.published: list[Published] = []
        self.refused: list[str] = []
        self._topics: set[str] = set()
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_post(_PUBLISH_PATH, self._publish)
        self._server = BackgroundHttpServer(app)

    @property
    def url(self) -> str:
        return self._server.url

    def create_topic(self, name: str) -> str:
        """A topic of the project (``CreateTopic``); returns its URN."""
        urn = f"urn:smn:{self.region}:{self.project_id}:{name}"
        with self._lock:
            self._topics.add(urn)
        return urn

    def documents(self, topic_urn: str) -> list[dict[str, Any]]:
        """The messages published to ``topic_urn``, read as JSON."""
        with self._lock:
            return [json.loads(p.message) for p in self.published if p.topic_urn == topic_urn]

    async def _publish(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            ak = authenticate(request, body, cast("SisBackend", self.keys), datetime.now(UTC))
            self._check_token(request, ak)
            if request.match_info["project_id"] != self.project_id:
                raise SisError(403, REFUSED, "the project does not match the credentials")
            urn = request.match_info["topic_urn"]
            with self._lock:
                known = urn in self._topics
            if not known:
                raise SisError(404, TOPIC_NOT_FOUND, "Topic not found.")
            subject, message = self._read(body)
        except SisError as error:
            with self._lock:
                self.refused.append(error.error_code)
            # SMN's own error shape: {"request_id", "code", "message"}.
            return web.json_response(
                {"request_id": uuid.uuid4().hex, "code": error.error_code, "message": error.error_msg},
                status=error.http_status,
            )
        with self._lock:
            self.published.append(Published(urn, subject, message))
        return web.json_response({"request_id": uuid.uuid4().hex, "message_id": uuid.uuid4().hex})

    @staticmethod
    def _read(body: bytes) -> tuple[str | None, str]:
        try:
            data = json.loads(body)
        except json.JSONDecodeError:
            raise SisError(400, REFUSED, "the request body is not JSON") from None
        if not isinstance(data, dict) or set(data) - _BODY_FIELDS:
            raise SisError(400, REFUSED, f"unknown fields: {sorted(set(data) - _BODY_FIELDS)}")
        given = [name for name in ("message", "message_structure", "message_template_name") if data.get(name)]
        if not given:
            raise SisError(400, REFUSED, "one of message, message_structure, message_template_name")
        subject = data.get("subject")
        if subject is not None and len(str(subject).encode("utf-8")) > MAX_SUBJECT_BYTES:
            raise SisError(400, REFUSED, "the subject is over 512 bytes")
        message = str(data.get("message") or "")
        if len(message.encode("utf-8")) > MAX_MESSAGE_BYTES:
            raise SisError(400, REFUSED, "the message is over 256 KB")
        return subject, message

    def _check_token(self, request: web.Request, ak: str) -> None:
        expected = self.keys.token_for(ak)
        if expected is None:
            return
        signed = request.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
        if "x-security-token" not in signed or request.headers.get("X-Security-Token") != expected:
            raise SisError(401, "APIGW.0301", "Incorrect IAM authentication information: security token")

    def __enter__(self) -> SmnEmulator:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()

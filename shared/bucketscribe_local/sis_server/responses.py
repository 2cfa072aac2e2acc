"""The SIS wire: aiohttp routes, AK/SK signature checks, and SIS/APIG-style JSON errors.

Routes (what ``huaweicloudsdksis`` calls, plus an admin route for the local stack):
- ``POST /v1/{project_id}/asr/transcriber/jobs`` → ``{"job_id"}``
- ``GET  /v1/{project_id}/asr/transcriber/jobs/{job_id}`` → the job JSON, without ``job_id``
- the emulator kit's admin routes (``/_emulator/faults``, ``/counters``, ``/jobs``, ``/clock``); not
  signed, since they exist only on this emulator.
"""

from __future__ import annotations

import hmac
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qsl

from aiohttp import web

from bucketscribe_local.emulator_kit.admin import add_admin_routes
from bucketscribe_local.emulator_kit.answer_delay import answer_delay
from bucketscribe_local.emulator_kit.lost_answers import LostAnswer
from bucketscribe_local.sis_server.models import Acceptance, SisBackend, SisError

BACKEND_KEY = web.AppKey("sis_backend", SisBackend)

MAX_CLOCK_SKEW = timedelta(minutes=15)
_SDK_DATE_FORMAT = "%Y%m%dT%H%M%SZ"
_AUTHORIZATION = re.compile(
    r"^SDK-HMAC-SHA256 Access=(?P<ak>[^,\s]+), SignedHeaders=(?P<headers>[a-z0-9;\-]+), "
    r"Signature=(?P<signature>[0-9a-f]{64})$"
)
_JOBS_PATH = "/v1/{project_id}/asr/transcriber/jobs"


def _unauthorized(reason: str) -> SisError:
    # API Gateway answers AK/SK failures before SIS sees the request, hence APIGW codes here.
    return SisError(401, "APIGW.0301", f"Incorrect IAM authentication information: {reason}")


def authenticate(request: web.Request, body: bytes, backend: SisBackend, now: datetime) -> str:
    """Check the SDK's ``SDK-HMAC-SHA256`` signature by signing the same request again.

    Rebuilds a ``huaweicloudsdkcore`` ``SdkRequest`` from what arrived (method, scheme, Host, raw
    path, query pairs, only the headers named in SignedHeaders, raw body) and signs it with the
    secret we hold for the access key; the Authorization values must match. Returns the AK.
    """
    from huaweicloudsdkcore.auth.credentials import BasicCredentials
    from huaweicloudsdkcore.sdk_request import SdkRequest
    from huaweicloudsdkcore.signer.signer import Signer

    authorization = request.headers.get("Authorization")
    if not authorization:
        raise _unauthorized("Authorization header is missing")
    match = _AUTHORIZATION.match(authorization)
    if match is None:
        raise _unauthorized("Authorization header is malformed")
    ak = match["ak"]
    secret = backend.secret_for(ak)
    if secret is None:
        raise _unauthorized(f"ak {ak} not exist")
    signed_headers = match["headers"].split(";")
    if "x-sdk-date" not in signed_headers or "host" not in signed_headers:
        raise _unauthorized("x-sdk-date and host must be signed")
    missing = [name for name in signed_headers if name not in request.headers]
    if missing:
        raise _unauthorized(f"signed header {missing[0]} is missing")
    try:
        signed_at = datetime.strptime(request.headers["X-Sdk-Date"], _SDK_DATE_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise _unauthorized("x-sdk-date is malformed") from exc
    if abs(now - signed_at) > MAX_CLOCK_SKEW:
        raise _unauthorized("x-sdk-date is too far from the server time (more than 15 minutes)")

    rebuilt = SdkRequest(
        method=request.method,
        schema=request.scheme,
        host=request.headers["Host"],
        resource_path=request.rel_url.raw_path,
        query_params=parse_qsl(request.rel_url.raw_query_string, keep_blank_values=True),
        header_params={name: request.headers[name] for name in signed_headers},
        body=body,
    )
    Signer(BasicCredentials(ak, secret)).sign(rebuilt)
    if not hmac.compare_digest(rebuilt.header_params["Authorization"], authorization):
        raise _unauthorized("verify aksk signature fail")
    return ak


def _check_project(request: web.Request, backend: SisBackend) -> None:
    project_id = request.match_info["project_id"]
    header_project = request.headers.get("X-Project-Id")
    if project_id != backend.project_id or (header_project is not None and header_project != project_id):
        raise SisError(403, "APIGW.0302", "the project id does not match the credentials")


async def _authorized_body(request: web.Request) -> tuple[SisBackend, bytes]:
    backend = request.app[BACKEND_KEY]
    body = await request.read()
    authenticate(request, body, backend, datetime.now(UTC))
    _check_project(request, backend)
    return backend, body


async def submit_job(request: web.Request) -> web.Response:
    backend, body = await _authorized_body(request)
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise SisError(400, "SIS.0032", "request body is invalid json") from exc
    accepted = backend.submit(payload)
    if accepted.lost_answer is not None:
        await _lose_answer(backend, accepted)
    return web.json_response({"job_id": accepted.job_id})


async def _lose_answer(backend: SisBackend, accepted: Acceptance) -> None:
    """The job exists; the caller only ever sees a 5xx (from SIS or its API gateway) or nothing."""
    if accepted.lost_answer is LostAnswer.HOLD:
        deadline = accepted.created_at + backend.faults.lost_response_hold_s
        await backend.clock.hold_until(deadline, backend.stopping)
        raise SisError(504, "APIGW.0201", "Backend timeout")  # the gateway gave up on SIS
    if backend.choose(("sis", "gateway")) == "sis":
        raise SisError(500, "SIS.0100", "internal error")
    raise SisError(502, "APIGW.0202", "Backend unavailable")


async def collect_job(request: web.Request) -> web.Response:
    backend, _ = await _authorized_body(request)
    return web.json_response(backend.describe(request.match_info["job_id"]))


@web.middleware
async def sis_errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Every answer is JSON with an ``X-Request-Id``, as the SDK's exception handler expects."""
    response: web.StreamResponse
    try:
        response = await handler(request)
    except SisError as error:
        response = web.json_response(error.body(), status=error.http_status)
    except web.HTTPNotFound:
        response = web.json_response(
            {"error_code": "APIGW.0101", "error_msg": "The API does not exist or has not been published"},
            status=404,
        )
    except web.HTTPMethodNotAllowed:
        response = web.json_response(
            {"error_code": "APIGW.0101", "error_msg": "The API does not exist or has not been published"},
            status=405,
        )
    response.headers["X-Request-Id"] = uuid.uuid4().hex
    return response


def create_sis_app(backend: SisBackend) -> web.Application:
    app = web.Application(middlewares=[answer_delay(backend, "/v1/"), sis_errors])
    app[BACKEND_KEY] = backend
    app.router.add_post(_JOBS_PATH, submit_job)
    app.router.add_get(_JOBS_PATH + "/{job_id}", collect_job)
    add_admin_routes(app, backend)
    return app

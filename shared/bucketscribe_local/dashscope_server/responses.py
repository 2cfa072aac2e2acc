"""The wire layer of the DashScope emulator: aiohttp routes that speak DashScope's JSON.

HTTP: file transcription submit, task query, list and cancel, the ``transcription_url`` result
files, and the emulator kit's admin routes (faults, counters, jobs, clock); the WebSocket
inference endpoint is mounted from ``inference_socket``. All state lives in
``tasks.DashScopeBackend`` and ``streams.RealtimeStream``.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from bucketscribe_local.dashscope_server.errors import DashScopeError, describe_validation_error
from bucketscribe_local.dashscope_server.inference_socket import WS_PATHS, inference_socket
from bucketscribe_local.dashscope_server.requests import TaskListQuery
from bucketscribe_local.dashscope_server.tasks import DashScopeBackend, TranscriptionTask
from bucketscribe_local.dashscope_server.wire_formats import TaskStatus, audio_seconds, beijing_time
from bucketscribe_local.emulator_kit.admin import add_admin_routes
from bucketscribe_local.emulator_kit.answer_delay import answer_delay, hold_answer
from bucketscribe_local.emulator_kit.lost_answers import LostAnswer

logger = logging.getLogger(__name__)

BACKEND_KEY: web.AppKey[DashScopeBackend] = web.AppKey("dashscope_backend", DashScopeBackend)

API = "/api/v1"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(backend: DashScopeBackend) -> web.Application:
    app = web.Application(
        middlewares=[answer_delay(backend, f"{API}/"), _dashscope_errors], client_max_size=16 * 1024**2
    )
    app[BACKEND_KEY] = backend
    app.router.add_post(f"{API}/services/audio/asr/transcription", submit_transcription)
    app.router.add_get(f"{API}/tasks", list_tasks)
    app.router.add_get(f"{API}/tasks/{{task_id}}", query_task)
    app.router.add_post(f"{API}/tasks/{{task_id}}/cancel", cancel_task)
    app.router.add_get("/results/{task_id}/{index:\\d+}.json", get_result)
    add_admin_routes(app, backend)
    for path in WS_PATHS:
        app.router.add_get(path, inference_socket(backend))
    return app


def _new_request_id() -> str:
    return str(uuid.uuid4())


def error_response(error: DashScopeError) -> web.Response:
    body = {"request_id": _new_request_id(), "code": error.code, "message": error.message}
    return web.json_response(body, status=error.status)


@web.middleware
async def _dashscope_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DashScopeError as error:
        return error_response(error)


def _backend(request: web.Request) -> DashScopeBackend:
    return request.app[BACKEND_KEY]


def _base_url(request: web.Request) -> str:
    configured = _backend(request).public_base_url
    return configured.rstrip("/") if configured else str(request.url.origin())


# ---------------------------------------------------------------------------------------------
# File transcription
# ---------------------------------------------------------------------------------------------


async def submit_transcription(request: web.Request) -> web.Response:
    backend = _backend(request)
    api_key = backend.authenticate(request.headers.get("Authorization"))
    if request.headers.get("X-DashScope-Async", "").strip().lower() != "enable":
        raise DashScopeError(403, "AccessDenied", "current user api does not support synchronous calls")
    try:
        body = await request.json()
    except ValueError as error:
        raise DashScopeError(400, "InvalidParameter", "The request body is not valid JSON.") from error
    task = backend.submit(api_key, body)
    if task.lost_answer is LostAnswer.HOLD:
        # The task exists; the answer waits past any client's timeout, then the gateway gives up.
        deadline = task.submit_time + backend.faults.lost_response_hold_s
        await backend.clock.hold_until(deadline, backend.stopping)
        raise DashScopeError(504, "RequestTimeOut", "Request timed out, please try again later.")
    if task.lost_answer is LostAnswer.ERROR:
        raise DashScopeError.for_status(500)
    return web.json_response(
        {"request_id": task.request_id, "output": {"task_id": task.task_id, "task_status": "PENDING"}}
    )


async def list_tasks(request: web.Request) -> web.Response:
    """``GET /tasks``: the caller's account's tasks, newest first, paged (``BaseAsyncApi.list``)."""
    backend = _backend(request)
    api_key = backend.authenticate(request.headers.get("Authorization"))
    try:
        query = TaskListQuery.model_validate(dict(request.query))
    except ValidationError as error:
        raise DashScopeError(400, "InvalidParameter", describe_validation_error(error)) from error
    page, total = backend.list_tasks(api_key, query)
    # No "output" wrapper: the SDKs take the whole body (data, total, …) when "data" is there.
    return web.json_response(
        {
            "request_id": _new_request_id(),
            "data": [backend.list_entry(task) for task in page],
            "total": total,
            "total_page": math.ceil(total / query.page_size),
            "page_no": query.page_no,
            "page_size": query.page_size,
        }
    )


async def query_task(request: web.Request) -> web.Response:
    backend = _backend(request)
    api_key = backend.authenticate(request.headers.get("Authorization"))
    task_id = request.match_info["task_id"]
    task = backend.query(api_key, task_id)
    if task is None:
        output: dict[str, Any] = {"task_id": task_id, "task_status": TaskStatus.UNKNOWN.value}
        return web.json_response({"request_id": _new_request_id(), "output": output})
    body: dict[str, Any] = {"request_id": _new_request_id(), "output": task_output(task, _base_url(request))}
    if task.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        total_ms = sum(s.audio_duration_ms for s in task.subtasks if s.status is TaskStatus.SUCCEEDED)
        body["usage"] = {"duration": audio_seconds(total_ms)}
    return web.json_response(body)


def task_output(task: TranscriptionTask, base_url: str) -> dict[str, Any]:
    """The ``output`` object of ``GET /tasks/{id}`` (providers.md §1.4)."""
    output: dict[str, Any] = {
        "task_id": task.task_id,
        "task_status": task.status.value,
        "submit_time": beijing_time(task.submit_time),
    }
    if task.scheduled_time is not None:
        output["scheduled_time"] = beijing_time(task.scheduled_time)
    if task.status.is_final and task.end_time is not None:
        output["end_time"] = beijing_time(task.end_time)
    if task.status in (TaskStatus.SUCCEEDED, TaskStatus.FAILED):
        results = []
        for index, subtask in enumerate(task.subtasks):
            entry: dict[str, Any] = {"file_url": subtask.file_url, "subtask_status": subtask.status.value}
            if subtask.status is TaskStatus.SUCCEEDED:
                entry["transcription_url"] = base_url + f"/results/{task.task_id}/{index}.json"
            else:
                entry["code"] = subtask.code
                entry["message"] = subtask.message
            results.append(entry)
        output["results"] = results
    output["task_metrics"] = task.metrics()
    if task.status is TaskStatus.FAILED:
        output["code"] = task.code
        output["message"] = task.message
    return output


async def cancel_task(request: web.Request) -> web.Response:
    backend = _backend(request)
    api_key = backend.authenticate(request.headers.get("Authorization"))
    backend.cancel(api_key, request.match_info["task_id"])
    return web.json_response({"request_id": _new_request_id()})


async def get_result(request: web.Request) -> web.Response:
    """The signed-OSS-URL stand-in: a plain GET, no auth; gone once the task expires. The
    ``result_delay_s`` fault holds the answer back (on the clock, never blocking other requests)."""
    backend = _backend(request)
    await hold_answer(backend, backend.faults.result_delay_s)
    document = backend.result_document(request.match_info["task_id"], int(request.match_info["index"]))
    if document is None:
        body = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
        return web.Response(status=404, text=body, content_type="application/xml")
    return web.json_response(document, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))

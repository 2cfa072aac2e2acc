"""The wire layer of the DashScope emulator: aiohttp routes that speak DashScope's JSON.

HTTP: file transcription submit, task query, list and cancel, the ``transcription_url`` result
files, and the emulator kit's admin routes (faults, counters, jobs, clock). WebSocket: the duplex
inference endpoint used by ``TranslationRecognizerRealtime`` (gummy) and ``Recognition`` (realtime
Paraformer).
All state lives in ``tasks.DashScopeBackend`` and ``streams.RealtimeStream``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError

from bucketscribe.local.dashscope_server.errors import DashScopeError, describe_validation_error
from bucketscribe.local.dashscope_server.requests import TaskListQuery
from bucketscribe.local.dashscope_server.streams import (
    RealtimeStream,
    StreamSentence,
    StreamWord,
    open_stream,
)
from bucketscribe.local.dashscope_server.tasks import DashScopeBackend, TranscriptionTask
from bucketscribe.local.dashscope_server.wire_formats import TaskStatus, audio_seconds, beijing_time
from bucketscribe.local.emulator_kit.admin import add_admin_routes
from bucketscribe.local.emulator_kit.lost_answers import LostAnswer
from bucketscribe.local.speech import UnreadableAudio

logger = logging.getLogger(__name__)

BACKEND_KEY: web.AppKey[DashScopeBackend] = web.AppKey("dashscope_backend", DashScopeBackend)

API = "/api/v1"
WS_PATHS = ("/api-ws/v1/inference", "/api-ws/v1/inference/")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def build_app(backend: DashScopeBackend) -> web.Application:
    app = web.Application(middlewares=[_dashscope_errors], client_max_size=16 * 1024**2)
    app[BACKEND_KEY] = backend
    app.router.add_post(f"{API}/services/audio/asr/transcription", submit_transcription)
    app.router.add_get(f"{API}/tasks", list_tasks)
    app.router.add_get(f"{API}/tasks/{{task_id}}", query_task)
    app.router.add_post(f"{API}/tasks/{{task_id}}/cancel", cancel_task)
    app.router.add_get("/results/{task_id}/{index:\\d+}.json", get_result)
    add_admin_routes(app, backend)
    for path in WS_PATHS:
        app.router.add_get(path, inference_socket)
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
    """The signed-OSS-URL stand-in: a plain GET, no auth; gone once the task expires."""
    document = _backend(request).result_document(
        request.match_info["task_id"], int(request.match_info["index"])
    )
    if document is None:
        body = "<?xml version='1.0' encoding='UTF-8'?><Error><Code>NoSuchKey</Code></Error>"
        return web.Response(status=404, text=body, content_type="application/xml")
    return web.json_response(document, dumps=lambda obj: json.dumps(obj, ensure_ascii=False))


# ---------------------------------------------------------------------------------------------
# WebSocket inference endpoint
# ---------------------------------------------------------------------------------------------


async def inference_socket(request: web.Request) -> web.StreamResponse:
    backend = _backend(request)
    # A bad key is refused at the handshake; the SDK reports "Unauthorized, your api-key is invalid!".
    backend.authenticate(request.headers.get("Authorization"))
    socket = web.WebSocketResponse(autoping=True)
    await socket.prepare(request)
    backend.count("ws_connections")
    await _InferenceConnection(socket, backend).serve()
    return socket


def _event(task_id: str, event: str, payload: dict[str, Any] | None = None, **extra: str) -> dict[str, Any]:
    return {
        "header": {"task_id": task_id, "event": event, **extra, "attributes": {}},
        "payload": payload or {},
    }


def _gummy_words(words: tuple[StreamWord, ...], fixed: bool) -> list[dict[str, Any]]:
    return [
        {
            "begin_time": w.begin_ms,
            "end_time": w.end_ms,
            "text": w.text,
            "punctuation": w.punctuation,
            "fixed": fixed,
        }
        for w in words
    ]


def gummy_output(stream: RealtimeStream, sentence: StreamSentence) -> dict[str, Any]:
    output: dict[str, Any] = {}
    if stream.parameters.transcription_enabled:
        output["transcription"] = {
            "sentence_id": sentence.sentence_id,
            "begin_time": sentence.begin_ms,
            "end_time": sentence.end_ms,
            "text": sentence.text,
            "words": _gummy_words(sentence.words, sentence.final),
            "sentence_end": sentence.final,
            "vad_pre_end": False,
        }
    if sentence.translation is not None:
        translation = sentence.translation
        output["translations"] = [
            {
                "sentence_id": translation.sentence_id,
                "lang": translation.language,
                "begin_time": translation.begin_ms,
                "end_time": translation.end_ms,
                "text": translation.text,
                "words": _gummy_words(translation.words, translation.final),
                "sentence_end": translation.final,
            }
        ]
    return output


def paraformer_output(sentence: StreamSentence) -> dict[str, Any]:
    return {
        "sentence": {
            "sentence_id": sentence.sentence_id,
            "begin_time": sentence.begin_ms,
            # Recognition.is_sentence_end() keys on end_time, so interim results carry null.
            "end_time": sentence.end_ms if sentence.final else None,
            "text": sentence.text,
            "words": [
                {"begin_time": w.begin_ms, "end_time": w.end_ms, "text": w.text, "punctuation": w.punctuation}
                for w in sentence.words
            ],
            "sentence_end": sentence.final,
        }
    }


class _InferenceConnection:
    """One WebSocket: a sequence of tasks (run-task … finish-task), each a RealtimeStream."""

    def __init__(self, socket: web.WebSocketResponse, backend: DashScopeBackend) -> None:
        self.socket = socket
        self.backend = backend
        self.stream: RealtimeStream | None = None
        self.finished_task_ids: set[str] = set()
        # Idle limits count on the backend's clock: from the last audio while a task runs, from
        # the last message otherwise.
        self.last_audio = self.last_message = backend.clock.now()
        self.finishing = False
        self._ended = False
        self._send_lock = asyncio.Lock()
        self._pass_lock = asyncio.Lock()
        self._interim: asyncio.Task[bool] | None = None
        self._failed = False

    async def serve(self) -> None:
        watchdog = asyncio.create_task(self._close_when_idle())
        try:
            while not self.socket.closed and not self._failed:
                message = await self.socket.receive()
                self.last_message = self.backend.clock.now()
                if message.type == WSMsgType.TEXT:
                    await self.on_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    await self.on_audio(message.data)
                else:  # CLOSE, CLOSING, CLOSED, ERROR
                    return
        finally:
            self._ended = True
            await watchdog
            if self._interim is not None and not self._interim.done():
                self._interim.cancel()

    def _idle_deadline(self) -> float:
        if self.finishing:
            return math.inf
        if self.stream is not None:
            return self.last_audio + self.backend.idle_timeout_s
        return self.last_message + self.backend.connection_idle_s

    async def _close_when_idle(self) -> None:
        """Fail the running task (or close an idle connection) once nothing arrived for too long.

        The deadline moves with every message, so it is looked at afresh on each turn; a stopping
        emulator closes the socket too, so that the server can shut down.
        """
        clock = self.backend.clock
        while not self._ended:
            if self.backend.stopping.is_set():
                await self.socket.close()
                return
            deadline = self._idle_deadline()
            if clock.now() >= deadline:
                break
            real = clock.real_wait_s(deadline)
            await asyncio.sleep(clock.ASYNC_POLL_S if real is None else min(real, clock.ASYNC_POLL_S))
        else:
            return
        if self.stream is not None:
            seconds = f"{self.backend.idle_timeout_s:g}"
            message = f"request timeout after {seconds} seconds."
            await self.fail(self.stream.task_id, "CLIENT_ERROR", message)
        else:
            await self.socket.close()

    async def send(self, message: dict[str, Any]) -> None:
        async with self._send_lock:
            if not self.socket.closed:
                await self.socket.send_str(json.dumps(message, ensure_ascii=False))

    async def fail(self, task_id: str, code: str, message: str) -> None:
        """task-failed, then close: DashScope never reuses a socket after a failure."""
        if self._failed:
            return
        self._failed = True
        self.backend.count("ws_tasks_failed")
        await self.send(_event(task_id, "task-failed", error_code=code, error_message=message))
        self.stream = None
        await self.socket.close()

    async def on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
            header = message["header"]
            action = header["action"]
            task_id = str(header.get("task_id") or "")
        except (ValueError, KeyError, TypeError):
            await self.fail(
                "", "InvalidParameter", "Malformed message: expected {header:{action,task_id},payload}."
            )
            return
        payload = message.get("payload") or {}
        if action == "run-task":
            await self.run_task(task_id, payload)
        elif action == "finish-task":
            await self.finish_task(task_id)
        elif action == "continue-task":
            if self.stream is None or task_id != self.stream.task_id:
                await self.fail(task_id, "InvalidParameter", "continue-task for a task that is not running.")
        else:
            await self.fail(task_id, "InvalidParameter", f"Unknown action {action!r}.")

    async def run_task(self, task_id: str, payload: dict[str, Any]) -> None:
        if not task_id:
            await self.fail(task_id, "InvalidParameter", "header.task_id is required.")
            return
        if self.stream is not None:
            await self.fail(task_id, "InvalidParameter", "A task is already running on this connection.")
            return
        if task_id in self.finished_task_ids:
            await self.fail(
                task_id, "InvalidParameter", "Duplicate task_id: use a new task_id for each task."
            )
            return
        try:
            self.stream = open_stream(
                task_id,
                payload,
                engine=self.backend.engine_for_run(),
                interim_interval_s=self.backend.interim_interval_s,
            )
        except DashScopeError as error:
            await self.fail(task_id, error.code, error.message)
            return
        self.last_audio = self.backend.clock.now()
        self.backend.count("ws_tasks_started")
        await self.send(_event(task_id, "task-started"))

    async def on_audio(self, chunk: bytes) -> None:
        stream = self.stream
        if stream is None:
            await self.fail("", "InvalidParameter", "Audio arrived before run-task.")
            return
        stream.append(chunk)
        self.last_audio = self.backend.clock.now()
        self.backend.count("ws_audio_frames")
        if stream.interim_due() and (self._interim is None or self._interim.done()):
            self._interim = asyncio.create_task(self.recognition_pass(stream, final=False))

    async def finish_task(self, task_id: str) -> None:
        stream = self.stream
        if stream is None or task_id != stream.task_id:
            await self.fail(task_id, "InvalidParameter", "finish-task for a task that is not running.")
            return
        self.finishing = True  # from here on the client waits for us: no idle limit applies
        try:
            if self._interim is not None:
                await self._interim
            if not await self.recognition_pass(stream, final=True):
                return
        finally:
            self.finishing = False
            self.last_message = self.backend.clock.now()
        self.finished_task_ids.add(task_id)
        self.stream = None
        self.backend.count("ws_tasks_finished")
        await self.send(_event(task_id, "task-finished", {"output": {}, "usage": None}))

    async def recognition_pass(self, stream: RealtimeStream, *, final: bool) -> bool:
        """Recognise what is new and send result-generated events; False once the task failed."""
        async with self._pass_lock:
            if self._failed:
                return False
            snapshot = stream.snapshot(final=final)
            if snapshot is None:
                return True
            try:
                sentences = await asyncio.to_thread(stream.recognize, snapshot)
            except UnreadableAudio:
                await self.fail(
                    stream.task_id,
                    "InvalidParameter",
                    f"The audio cannot be decoded as {stream.parameters.format} "
                    f"at {stream.parameters.sample_rate} Hz.",
                )
                return False
            except Exception:
                logger.exception("realtime recognition failed for %s", stream.task_id)
                await self.fail(stream.task_id, "InternalError", "Recognition failed inside the emulator.")
                return False
            for sentence in sentences:
                output = gummy_output(stream, sentence) if stream.is_gummy else paraformer_output(sentence)
                usage = (
                    {"duration": audio_seconds(sentence.end_ms - sentence.begin_ms)}
                    if sentence.final
                    else None
                )
                await self.send(
                    _event(stream.task_id, "result-generated", {"output": output, "usage": usage})
                )
            return True

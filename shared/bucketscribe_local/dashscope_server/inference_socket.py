"""The WebSocket inference endpoint: the duplex protocol ``TranslationRecognizerRealtime`` (gummy)
and ``Recognition`` (realtime Paraformer) speak.

One connection runs a sequence of tasks (run-task … finish-task, each a ``RealtimeStream``).
While audio arrives, a recogniser per task runs the stream's passes and sends result-generated
events as each ends; finish-task waits for the last of them. Idle limits (23 s without audio in a
task, 60 s without a message otherwise) are measured on the backend's clock.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any

from aiohttp import WSMsgType, web

from bucketscribe_local.dashscope_server.errors import DashScopeError
from bucketscribe_local.dashscope_server.streams import (
    RealtimeStream,
    StreamSentence,
    StreamWord,
    open_stream,
)
from bucketscribe_local.dashscope_server.tasks import DashScopeBackend
from bucketscribe_local.dashscope_server.wire_formats import audio_seconds
from bucketscribe_local.speech import UnreadableAudio
from bucketscribe_local.stream_decoding import PassResult

logger = logging.getLogger(__name__)

WS_PATHS = ("/api-ws/v1/inference", "/api-ws/v1/inference/")


def inference_socket(backend: DashScopeBackend) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The aiohttp handler of the inference endpoint, for ``backend``."""

    async def handle(request: web.Request) -> web.StreamResponse:
        # A bad key is refused at the handshake; the SDK reports "Unauthorized, your api-key is invalid!".
        backend.authenticate(request.headers.get("Authorization"))
        socket = web.WebSocketResponse(autoping=True)
        await socket.prepare(request)
        backend.count("ws_connections")
        await _InferenceConnection(socket, backend).serve()
        return socket

    return handle


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
        if sentence.language:
            # Not in DashScope's format (the SDK keeps it in _raw_data): the language the offline
            # engine heard, so that a transcript can say what ran when the task asked for "auto".
            output["transcription"]["language"] = sentence.language
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
            **({"language": sentence.language} if sentence.language else {}),  # as in gummy_output
        }
    }


def _result_event(stream: RealtimeStream, sentence: StreamSentence) -> dict[str, Any]:
    output = gummy_output(stream, sentence) if stream.is_gummy else paraformer_output(sentence)
    usage = {"duration": audio_seconds(sentence.end_ms - sentence.begin_ms)} if sentence.final else None
    return _event(stream.task_id, "result-generated", {"output": output, "usage": usage})


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
        self._audio_arrived = asyncio.Event()  # wakes the recogniser of the running task
        self._recognizer: asyncio.Task[bool] | None = None
        self._interim_waiting: Future[PassResult] | None = None  # the running task's interim, if queued
        # finish-task runs apart from the reading loop, which goes on reading (and so answering
        # the client's pings: the SDK's aiohttp closes a connection whose pings go unanswered for
        # 15 s, and the last passes of a long stream can take longer than that).
        self._finisher: asyncio.Task[None] | None = None
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
            for task in (self._finisher, self._recognizer):
                if task is not None and not task.done():
                    task.cancel()

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
        await self._finished()
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
            self._finisher = asyncio.create_task(self.finish_task(task_id))
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
                decoder=self.backend.stream_decoder(),
                interim_interval_s=self.backend.interim_interval_s,
            )
        except DashScopeError as error:
            await self.fail(task_id, error.code, error.message)
            return
        self.last_audio = self.backend.clock.now()
        self.backend.count("ws_tasks_started")
        await self.send(_event(task_id, "task-started"))
        self._recognizer = asyncio.create_task(self._recognize_while_streaming(self.stream))

    async def _finished(self) -> None:
        """A message after finish-task waits for that task to end, so that tasks keep their order."""
        if self._finisher is not None and not self._finisher.done():
            await self._finisher

    async def on_audio(self, chunk: bytes) -> None:
        await self._finished()
        stream = self.stream
        if stream is None:
            await self.fail("", "InvalidParameter", "Audio arrived before run-task.")
            return
        stream.append(chunk)
        self.last_audio = self.backend.clock.now()
        self.backend.count("ws_audio_frames")
        self._final_overtakes_interim(stream)
        self._audio_arrived.set()

    def _final_overtakes_interim(self, stream: RealtimeStream) -> None:
        """An utterance ended while the stream's interim of it still waits for a batch: the
        interim is withdrawn (its text would be out of date before it is sent) and the final goes."""
        waiting = self._interim_waiting
        if waiting is not None and stream.final_due:
            stream.decoder.withdraw(waiting)

    async def finish_task(self, task_id: str) -> None:
        stream = self.stream
        if stream is None or task_id != stream.task_id:
            await self.fail(task_id, "InvalidParameter", "finish-task for a task that is not running.")
            return
        self.finishing = True  # from here on the client waits for us: no idle limit applies
        stream.close_input()
        self._final_overtakes_interim(stream)
        self._audio_arrived.set()
        try:
            if self._recognizer is None or not await self._recognizer:
                return
        finally:
            self.finishing = False
            self.last_message = self.backend.clock.now()
        self.finished_task_ids.add(task_id)
        self.stream = None
        self.backend.count("ws_tasks_finished")
        await self.send(_event(task_id, "task-finished", {"output": {}, "usage": None}))

    async def _recognize_while_streaming(self, stream: RealtimeStream) -> bool:
        """Run the stream's passes as audio arrives and send their results; False once failed.

        One pass at a time, so a stream's results keep their order; each one's sentences go out
        as soon as it ends, while the client is still sending. The passes themselves run off the
        event loop, in the stream decoder, batched with other streams' (``stream_decoding``).
        """
        while True:
            self._audio_arrived.clear()
            work = stream.next_pass()
            if work is None:
                if stream.input_closed:
                    return True
                await self._audio_arrived.wait()
                continue
            future = stream.decoder.submit(work)
            self._interim_waiting = None if work.final else future
            try:
                result = await asyncio.wrap_future(future)
                sentences = stream.sentences(work, result)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if future.cancelled() and not work.final and task is not None and not task.cancelling():
                    continue  # an interim withdrawn for the final that overtook it: on to the final
                raise
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
            finally:
                self._interim_waiting = None
            if self._failed:
                return False
            for sentence in sentences:
                await self.send(_result_event(stream, sentence))

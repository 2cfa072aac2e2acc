"""The real dashscope SDK against our DashScope emulator, over HTTP and WebSocket on 127.0.0.1.

The audio is made here: each second is a tone of its own pitch, and ``PitchEngine`` (a tiny
speech engine) "hears" the pitch of every second by counting zero crossings. So the text the
SDK gets back proves which audio reached the engine, without loading a real model.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import math
import struct
import threading
import time
import urllib.error
import urllib.request
import uuid
import wave
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import dashscope
import pytest
import requests
from aiohttp import web
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.speech import (
    ProgressCallback,
    RecognizedSegment,
    RecognizedWord,
    UnreadableAudio,
)
from bucketscribe_local.speech import (
    Recognition as EngineRecognition,
)
from dashscope.audio.asr import (
    Recognition,
    RecognitionCallback,
    RecognitionResult,
    Transcription,
    TranslationRecognizerCallback,
    TranslationRecognizerRealtime,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "sk-emulator-test"
RATE = 16000
PITCHES = (300, 500, 700)  # one second of each
WAIT_S = 10


# ---------------------------------------------------------------------------------------------
# Audio and a speech engine that can really hear it
# ---------------------------------------------------------------------------------------------


def pitch_pcm(pitches: tuple[int, ...] = PITCHES, seconds_each: float = 1.0, rate: int = RATE) -> bytes:
    samples: list[int] = []
    per = int(seconds_each * rate)
    for pitch in pitches:
        samples.extend(int(9000 * math.sin(2 * math.pi * pitch * i / rate)) for i in range(per))
    return struct.pack(f"<{len(samples)}h", *samples)


def wav_of(pcm: bytes, rate: int = RATE) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


class PitchEngine:
    """One segment per second of audio, named after the pitch heard in it (zh), or its English."""

    def __init__(self) -> None:
        self.calls = 0

    def recognize(
        self,
        audio: bytes | Path,
        *,
        language: str | None = None,
        translate: bool = False,
        channel: int | None = None,
        word_timestamps: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> EngineRecognition:
        self.calls += 1
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        try:
            with wave.open(io.BytesIO(data)) as reader:
                rate = reader.getframerate()
                frames = reader.readframes(reader.getnframes())
        except (wave.Error, EOFError) as error:
            raise UnreadableAudio(str(error)) from error
        samples = struct.unpack(f"<{len(frames) // 2}h", frames[: len(frames) // 2 * 2])
        segments = []
        for start in range(0, len(samples), rate):
            chunk = samples[start : start + rate]
            if len(chunk) < rate // 5:
                break
            crossings = sum(1 for a, b in itertools.pairwise(chunk) if (a < 0) != (b < 0))
            pitch = round(crossings / 2 / (len(chunk) / rate) / 100) * 100
            begin = start * 1000 // rate
            end = (start + len(chunk)) * 1000 // rate
            tokens = [f"tone {pitch}", "hertz."] if translate else [f"音调{pitch}", "赫兹。"]
            middle = (begin + end) // 2
            segments.append(
                RecognizedSegment(
                    start_ms=begin,
                    end_ms=end,
                    text=" ".join(tokens) if translate else "".join(tokens),
                    words=[
                        RecognizedWord(start_ms=begin, end_ms=middle, text=tokens[0]),
                        RecognizedWord(start_ms=middle, end_ms=end, text=tokens[1]),
                    ],
                )
            )
        duration_ms = len(samples) * 1000 // rate
        if on_progress is not None:
            on_progress(duration_ms, duration_ms)
        return EngineRecognition(
            language="en" if translate else "zh", duration_ms=duration_ms, segments=segments
        )


def zh(pitch: int) -> str:
    return f"音调{pitch}赫兹。"


def en(pitch: int) -> str:
    return f"tone {pitch} hertz."


# ---------------------------------------------------------------------------------------------
# Local helpers: a file server (the "public URLs") and an EventBridge HTTP target
# ---------------------------------------------------------------------------------------------


class FileServer:
    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = files
        app = web.Application()
        app.router.add_get("/{name}", self._get)
        self.server = BackgroundHttpServer(app).start()

    async def _get(self, request: web.Request) -> web.Response:
        body = self.files.get(request.match_info["name"])
        return web.Response(status=404) if body is None else web.Response(body=body)

    def url(self, name: str) -> str:
        return f"{self.server.url}/{name}"


class PushReceiver:
    """Records every POST; answers ``fail_first`` of them with HTTP 500."""

    def __init__(self, fail_first: int = 0) -> None:
        self.fail_first = fail_first
        self.received: list[tuple[dict[str, str], dict[str, Any], int]] = []
        self._condition = threading.Condition()
        app = web.Application()
        app.router.add_post("/events", self._post)
        self.server = BackgroundHttpServer(app).start()
        self.url = f"{self.server.url}/events"

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.json()
        status = 500 if len(self.received) < self.fail_first else 200
        with self._condition:
            self.received.append(({k.lower(): v for k, v in request.headers.items()}, body, status))
            self._condition.notify_all()
        return web.Response(status=status)

    def wait_for(
        self, count: int, timeout: float = WAIT_S
    ) -> list[tuple[dict[str, str], dict[str, Any], int]]:
        with self._condition:
            self._condition.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


@pytest.fixture(scope="module")
def files() -> Iterator[FileServer]:
    server = FileServer(
        {
            "three.wav": wav_of(pitch_pcm()),
            "one.wav": wav_of(pitch_pcm((400,))),
            "garbage.mp3": b"this is not audio at all" * 50,
        }
    )
    yield server
    server.server.stop()


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[DashScopeEmulator]:
    # A manual clock: nothing here happens "later" unless a test moves time on.
    with DashScopeEmulator(
        api_keys=[KEY], engine=PitchEngine(), interim_interval_s=0.5, clock=ManualClock()
    ) as running:
        point_sdk_at(running, monkeypatch)
        yield running


def point_sdk_at(running: DashScopeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK reads DASHSCOPE_* env vars at import; the module attributes are read on each call.
    monkeypatch.setattr(dashscope, "base_http_api_url", running.http_api_url)
    monkeypatch.setattr(dashscope, "base_websocket_api_url", running.ws_url)
    monkeypatch.setattr(dashscope, "api_key", KEY)


DEAD_URL = "http://127.0.0.1:9/missing.wav"  # the discard port: connection refused


def finished(running: DashScopeEmulator, task_id: str, key: str = KEY) -> Any:
    """Wait until the emulator says the task is final, then fetch it through the SDK."""
    running.backend.wait_for_task(task_id, WAIT_S)
    response = Transcription.fetch(task_id, api_key=key)
    assert response.status_code == 200, response
    return response


def http_get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def emulator_jobs(running: DashScopeEmulator) -> list[dict[str, Any]]:
    status, body = http_get(running.url + "/_emulator/jobs")
    assert status == 200
    return list(json.loads(body)["jobs"])


# ---------------------------------------------------------------------------------------------
# File transcription (REST, async tasks)
# ---------------------------------------------------------------------------------------------


def test_three_files_one_undownloadable(emulator: DashScopeEmulator, files: FileServer) -> None:
    urls = [files.url("three.wav"), DEAD_URL, files.url("one.wav")]
    submitted = Transcription.async_call(model="paraformer-v2", file_urls=urls, api_key=KEY)
    assert submitted.status_code == 200, submitted
    assert submitted.output.task_status == "PENDING"
    assert submitted.request_id

    emulator.backend.wait_for_task(submitted.output.task_id, WAIT_S)
    done = Transcription.wait(submitted, api_key=KEY, wait_timeout=WAIT_S)  # final: the first poll ends it

    assert done.status_code == 200, done
    output = done.output
    assert output.task_status == "SUCCEEDED"  # any subtask succeeded
    assert output["task_metrics"] == {"TOTAL": 3, "SUCCEEDED": 2, "FAILED": 1}
    assert output["submit_time"] and output["end_time"]
    results = output["results"]
    assert [r["file_url"] for r in results] == urls
    assert [r["subtask_status"] for r in results] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert results[1]["code"] == "InvalidFile.DownloadFailed"
    assert results[1]["message"] == "The audio file cannot be downloaded."
    assert "transcription_url" not in results[1]
    assert done.usage["duration"] == 4  # 3 s + 1 s of audio

    status, body = http_get(results[0]["transcription_url"])  # plain GET, no auth
    assert status == 200
    document = json.loads(body)
    assert document["file_url"] == urls[0]
    assert document["properties"] == {
        "audio_format": "pcm_s16le",
        "channels": [0],
        "original_sampling_rate": RATE,
        "original_duration_in_milliseconds": 3000,
        "engine": "PitchEngine",  # not DashScope's: the emulator names the engine that ran
    }
    (transcript,) = document["transcripts"]
    assert transcript["channel_id"] == 0
    assert transcript["content_duration_in_milliseconds"] == 3000
    assert [s["text"] for s in transcript["sentences"]] == [zh(p) for p in PITCHES]
    assert transcript["text"] == " ".join(zh(p) for p in PITCHES)
    first = transcript["sentences"][0]
    assert (first["begin_time"], first["end_time"], first["sentence_id"]) == (0, 1000, 1)
    assert "speaker_id" not in first
    assert first["words"] == [
        {"begin_time": 0, "end_time": 500, "text": "音调300", "punctuation": ""},
        {"begin_time": 500, "end_time": 1000, "text": "赫兹", "punctuation": "。"},
    ]
    _, other = http_get(results[2]["transcription_url"])
    assert [s["text"] for s in json.loads(other)["transcripts"][0]["sentences"]] == [zh(400)]

    diarized = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY, diarization_enabled=True
    )
    result = finished(emulator, diarized.output.task_id)
    _, body = http_get(result.output["results"][0]["transcription_url"])
    assert json.loads(body)["transcripts"][0]["sentences"][0]["speaker_id"] == 0


def test_all_files_failing_fails_the_task(emulator: DashScopeEmulator, files: FileServer) -> None:
    submitted = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("garbage.mp3"), files.url("absent.wav")], api_key=KEY
    )
    done = finished(emulator, submitted.output.task_id)
    assert done.output.task_status == "FAILED"
    assert [r["code"] for r in done.output["results"]] == ["FILE_PARSE_FAILED", "InvalidFile.DownloadFailed"]
    assert done.output["code"] == "FILE_PARSE_FAILED"  # the task-level error of a failed task
    assert done.output["task_metrics"] == {"TOTAL": 2, "SUCCEEDED": 0, "FAILED": 2}


def test_request_validation_and_auth(emulator: DashScopeEmulator, files: FileServer) -> None:
    wrong = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key="sk-nope"
    )
    assert (wrong.status_code, wrong.code) == (401, "InvalidApiKey")
    assert Transcription.fetch("some-task", api_key="sk-nope").status_code == 401

    unknown = Transcription.async_call(model="paraformer-v9", file_urls=[files.url("one.wav")], api_key=KEY)
    assert (unknown.status_code, unknown.code) == (400, "InvalidParameter")
    assert "paraformer-v9" in unknown.message
    empty = Transcription.async_call(model="paraformer-v2", file_urls=[], api_key=KEY)
    assert (empty.status_code, empty.code) == (400, "InvalidParameter")

    synchronous = requests.post(
        emulator.http_api_url + "/services/audio/asr/transcription",
        json={"model": "paraformer-v2", "input": {"file_urls": [files.url("one.wav")]}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=5,
    )
    assert synchronous.status_code == 403
    assert synchronous.json()["code"] == "AccessDenied"
    assert synchronous.json()["message"] == "current user api does not support synchronous calls"

    unknown_task = Transcription.fetch(str(uuid.uuid4()), api_key=KEY)
    assert unknown_task.output.task_status == "UNKNOWN"


def test_max_files_per_task(monkeypatch: pytest.MonkeyPatch, files: FileServer) -> None:
    with DashScopeEmulator(api_keys=[KEY], engine=PitchEngine(), max_files_per_task=2) as running:
        point_sdk_at(running, monkeypatch)
        too_many = Transcription.async_call(
            model="paraformer-v2", file_urls=[files.url("one.wav")] * 3, api_key=KEY
        )
        assert (too_many.status_code, too_many.code) == (400, "InvalidParameter")
        assert running.backend.counters.tasks_created == 0


def test_queries_are_throttled_per_key(emulator: DashScopeEmulator, files: FileServer) -> None:
    task_id = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
    ).output.task_id
    answers = []
    for _ in range(100):  # as fast as one client can: far more than 20 in a second
        answers.append(Transcription.fetch(task_id, api_key=KEY))
        if answers[-1].status_code != 200:
            break
    assert answers[-1].status_code == 429, "queries far beyond 20/s must be throttled"
    assert answers[-1].code == "Throttling.RateQuota"
    assert len(answers) == 21  # the first 20 in the (frozen) second pass
    assert emulator.backend.counters.query_throttled == 1
    manual_clock(emulator).advance(1.0)  # the sliding window empties
    assert Transcription.fetch(task_id, api_key=KEY).status_code == 200


def test_expired_task_is_unknown_and_its_result_gone(emulator: DashScopeEmulator, files: FileServer) -> None:
    clock = manual_clock(emulator)
    task_id = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
    ).output.task_id
    url = finished(emulator, task_id).output["results"][0]["transcription_url"]
    assert http_get(url)[0] == 200
    clock.advance(24 * 3600 - 1)
    assert Transcription.fetch(task_id, api_key=KEY).output.task_status == "SUCCEEDED"
    clock.advance(1)  # 24 h after it ended
    assert Transcription.fetch(task_id, api_key=KEY).output.task_status == "UNKNOWN"
    assert http_get(url)[0] == 404

    emulator.set_faults(FaultPlan(result_expiry_s=60))
    short_lived = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
    ).output.task_id
    short_url = finished(emulator, short_lived).output["results"][0]["transcription_url"]
    clock.advance(60)
    assert Transcription.fetch(short_lived, api_key=KEY).output.task_status == "UNKNOWN"
    assert http_get(short_url)[0] == 404
    assert [job["state"] for job in emulator_jobs(emulator)] == ["expired", "expired"]
    assert emulator.backend.counters.tasks_expired == 2


def test_cancel_only_while_pending(emulator: DashScopeEmulator, files: FileServer) -> None:
    emulator.set_faults(FaultPlan(processing_delay_s=30))  # on a clock that does not move
    task_id = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
    ).output.task_id
    assert Transcription.fetch(task_id, api_key=KEY).output.task_status == "PENDING"
    assert Transcription.cancel(task_id, api_key=KEY).status_code == 200
    assert Transcription.fetch(task_id, api_key=KEY).output.task_status == "CANCELED"
    again = Transcription.cancel(task_id, api_key=KEY)
    assert again.status_code == 400
    assert again.code == "UnsupportedOperation"


def test_fault_knobs_for_submit_jobs_and_instant(emulator: DashScopeEmulator, files: FileServer) -> None:
    url = [files.url("one.wav")]
    emulator.set_faults(FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    throttled = Transcription.async_call(model="paraformer-v2", file_urls=url, api_key=KEY)
    assert (throttled.status_code, throttled.code) == (429, "Throttling.RateQuota")

    admin = requests.put(
        emulator.url + "/_emulator/faults",
        json={"submit_error_rate": 1.0, "submit_error_status": 500},
        timeout=5,
    )
    assert admin.status_code == 200
    broken = Transcription.async_call(model="paraformer-v2", file_urls=url, api_key=KEY)
    assert (broken.status_code, broken.code) == (500, "InternalError")

    emulator.set_faults(FaultPlan(job_failure_rate=1.0))
    failed = finished(
        emulator, Transcription.async_call(model="paraformer-v2", file_urls=url, api_key=KEY).output.task_id
    )
    assert failed.output.task_status == "FAILED"

    emulator.set_faults(FaultPlan(instant=True))
    instant = finished(
        emulator,
        Transcription.async_call(
            model="paraformer-v2", file_urls=[*url, DEAD_URL], api_key=KEY
        ).output.task_id,
    )
    # instant swaps in the fixed engine but still downloads: the dead URL still fails.
    assert [r["subtask_status"] for r in instant.output["results"]] == ["SUCCEEDED", "FAILED"]
    _, body = http_get(instant.output["results"][0]["transcription_url"])
    assert "fixed transcript" in json.loads(body)["transcripts"][0]["text"]
    assert emulator.backend.counters.submit_calls == 4
    assert emulator.backend.counters.submit_rejected == 2


# ---------------------------------------------------------------------------------------------
# EventBridge-style push
# ---------------------------------------------------------------------------------------------


def test_push_delivers_the_full_cloudevent(monkeypatch: pytest.MonkeyPatch, files: FileServer) -> None:
    receiver = PushReceiver(fail_first=1)  # the first delivery fails: the emulator retries
    try:
        with DashScopeEmulator(
            api_keys=[KEY],
            engine=PitchEngine(),
            push_target_url=receiver.url,
            push_headers={"x-api-key": "destination-secret"},
            push_retry_backoff_s=0.05,
        ) as running:
            point_sdk_at(running, monkeypatch)
            before_ms = int(time.time() * 1000)
            submitted = Transcription.async_call(
                model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
            )
            deliveries = receiver.wait_for(2)
            assert [status for _, _, status in deliveries] == [500, 200]
            headers, event, _ = deliveries[1]
            assert headers["x-api-key"] == "destination-secret"
            assert before_ms <= int(headers["x-eventbridge-signature-timestamp"]) <= int(time.time() * 1000)
            assert event["specversion"] == "1.0"
            assert uuid.UUID(event["id"])
            assert event["source"] == "acs.dashscope"
            assert event["type"] == "dashscope:System:AsyncTaskFinish"
            assert event["time"].endswith("Z")
            data = event["data"]
            assert data["task_id"] == submitted.output.task_id
            assert data["task_status"] == "SUCCEEDED"
            assert data["request_id"] == submitted.request_id
            assert data["region"] == "cn-beijing"
            assert data["contain_result"] is False
            assert data["user_api_unique_key"] == "apikey:v1:audio:asr:transcription:paraformer-v2"
            assert data["start_time"] and data["end_time"] and data["api_key_id"]
            # The event carries no result: the receiver fetches it.
            assert Transcription.fetch(data["task_id"], api_key=KEY).output.task_status == "SUCCEEDED"
            assert running.backend.wait_pushes_idle(WAIT_S)
            assert running.backend.counters.pushes_sent == 1
            counters = running.backend.task_counters(data["task_id"])
            assert counters is not None
            assert (counters.push_attempts, counters.pushes_sent) == (2, 1)
    finally:
        receiver.server.stop()


def test_push_drop_and_duplicate_knobs(monkeypatch: pytest.MonkeyPatch, files: FileServer) -> None:
    receiver = PushReceiver()
    try:
        faults = FaultPlan(drop_callback_rate=1.0)
        with DashScopeEmulator(
            api_keys=[KEY], engine=PitchEngine(), faults=faults, push_target_url=receiver.url
        ) as running:
            point_sdk_at(running, monkeypatch)
            dropped = Transcription.async_call(
                model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
            )
            assert finished(running, dropped.output.task_id).output.task_status == "SUCCEEDED"
            assert running.backend.wait_pushes_idle(WAIT_S)  # a push, had one been sent, ended by now
            assert receiver.received == []
            assert running.backend.counters.pushes_dropped == 1

            running.set_faults(FaultPlan(duplicate_callback_rate=1.0))
            twice = Transcription.async_call(
                model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY
            )
            deliveries = receiver.wait_for(2)
            assert len(deliveries) == 2
            assert {event["data"]["task_id"] for _, event, _ in deliveries} == {twice.output.task_id}
            assert deliveries[0][1]["id"] == deliveries[1][1]["id"]  # a redelivery, not a new event
            assert running.backend.wait_pushes_idle(WAIT_S)
            assert running.backend.counters.pushes_sent == 2
    finally:
        receiver.server.stop()


# ---------------------------------------------------------------------------------------------
# WebSocket: gummy (TranslationRecognizerRealtime) and realtime Paraformer (Recognition)
# ---------------------------------------------------------------------------------------------


FRAME_BYTES = RATE * 2 // 10  # 100 ms of 16-bit mono


def send_frames(recognizer: Any, pcm: bytes) -> None:
    """Send as a live source would, frame by frame (as fast as the SDK takes them)."""
    for start in range(0, len(pcm), FRAME_BYTES):
        recognizer.send_audio_frame(pcm[start : start + FRAME_BYTES])


class GummyEvents(TranslationRecognizerCallback):
    def __init__(self) -> None:
        self.events: list[tuple[Any, Any]] = []
        self.errors: list[Any] = []
        self.complete = threading.Event()

    def on_event(
        self, request_id: Any, transcription_result: Any, translation_result: Any, usage: Any
    ) -> None:
        self.events.append((transcription_result, translation_result))

    def on_complete(self) -> None:
        self.complete.set()

    def on_error(self, message: Any) -> None:
        self.errors.append(message)


def test_gummy_streams_transcription_and_english_translation(emulator: DashScopeEmulator) -> None:
    callback = GummyEvents()
    recognizer = TranslationRecognizerRealtime(
        model="gummy-realtime-v1",
        format="pcm",
        sample_rate=RATE,
        callback=callback,
        transcription_enabled=True,
        translation_enabled=True,
        translation_target_languages=["en"],
    )
    recognizer.start()
    send_frames(recognizer, pitch_pcm())
    recognizer.stop()

    assert callback.complete.is_set()
    assert callback.errors == []
    interim = [t for t, _ in callback.events if t is not None and not t.is_sentence_end]
    finals = [(t, tr) for t, tr in callback.events if t is not None and t.is_sentence_end]
    assert all(not w.fixed for t in interim for w in t.words)  # hypotheses, when there are any
    assert [t.text for t, _ in finals] == [zh(p) for p in PITCHES]
    assert [t.sentence_id for t, _ in finals] == [0, 1, 2]
    assert [(t.begin_time, t.end_time) for t, _ in finals] == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert all(w.fixed for t, _ in finals for w in t.words)
    translations = [tr.get_translation("en") for _, tr in finals]
    assert [t.text for t in translations] == [en(p) for p in PITCHES]
    assert all(t.language == "en" and t.is_sentence_end for t in translations)
    assert all(w.fixed for t in translations for w in t.words)
    assert emulator.backend.counters.ws_tasks_finished == 1


def test_gummy_rejects_a_target_other_than_english(emulator: DashScopeEmulator, tmp_path: Path) -> None:
    audio = tmp_path / "a.pcm"
    audio.write_bytes(pitch_pcm((300,)))
    recognizer = TranslationRecognizerRealtime(
        model="gummy-realtime-v1",
        format="pcm",
        sample_rate=RATE,
        callback=GummyEvents(),
        translation_enabled=True,
        translation_target_languages=["ja"],
    )
    result = recognizer.call(str(audio))
    assert result.error_message is not None
    assert result.error_message.status_code == 44  # the SDK's code for a task-failed event
    assert result.error_message.code == "InvalidParameter"
    assert "only 'en'" in result.error_message.message


def test_recognition_call_on_a_wav_file(emulator: DashScopeEmulator, tmp_path: Path) -> None:
    audio = tmp_path / "speech.wav"
    audio.write_bytes(wav_of(pitch_pcm()))
    recognition = Recognition(
        model="paraformer-realtime-v2", format="wav", sample_rate=RATE, callback=RecognitionCallback()
    )
    result = recognition.call(str(audio))
    assert result.status_code == 200, result
    sentences = result.get_sentence()
    assert isinstance(sentences, list)
    assert [s["text"] for s in sentences] == [zh(p) for p in PITCHES]
    assert all(RecognitionResult.is_sentence_end(s) for s in sentences)
    assert [(s["begin_time"], s["end_time"]) for s in sentences] == [(0, 1000), (1000, 2000), (2000, 3000)]
    assert sentences[0]["words"][1] == {
        "begin_time": 500,
        "end_time": 1000,
        "text": "赫兹",
        "punctuation": "。",
    }


class ParaformerEvents(RecognitionCallback):
    def __init__(self) -> None:
        self.sentences: list[dict[str, Any]] = []
        self.errors: list[Any] = []
        self.complete = threading.Event()
        self.failed = threading.Event()

    def on_event(self, result: RecognitionResult) -> None:
        sentence = result.get_sentence()
        assert isinstance(sentence, dict)
        self.sentences.append(sentence)

    def on_complete(self) -> None:
        self.complete.set()

    def on_error(self, result: RecognitionResult) -> None:
        self.errors.append(result)
        self.failed.set()


def test_recognition_streaming_callbacks(emulator: DashScopeEmulator) -> None:
    callback = ParaformerEvents()
    recognition = Recognition(
        model="paraformer-realtime-v2", format="pcm", sample_rate=RATE, callback=callback
    )
    recognition.start()
    send_frames(recognition, pitch_pcm((600, 800)))
    recognition.stop()
    assert callback.complete.is_set() and not callback.errors
    finals = [s for s in callback.sentences if RecognitionResult.is_sentence_end(s)]
    assert [s["text"] for s in finals] == [zh(600), zh(800)]
    assert [s["sentence_id"] for s in finals] == [1, 2]
    # Interim hypotheses (if the pace let one through) carry no end time, as the SDK expects.
    assert all(s["end_time"] is None for s in callback.sentences if not s["sentence_end"])


def test_realtime_errors_close_the_task(emulator: DashScopeEmulator, tmp_path: Path) -> None:
    unknown = Recognition(
        model="paraformer-realtime-v9", format="pcm", sample_rate=RATE, callback=RecognitionCallback()
    )
    pcm_file = tmp_path / "a.pcm"
    pcm_file.write_bytes(pitch_pcm((300,)))
    failed = unknown.call(str(pcm_file))
    assert (failed.status_code, failed.code) == (44, "ModelNotFound")

    garbage = tmp_path / "a.mp3"
    garbage.write_bytes(b"not an mp3 at all" * 100)
    undecodable = Recognition(
        model="paraformer-realtime-v2", format="mp3", sample_rate=RATE, callback=RecognitionCallback()
    )
    failed = undecodable.call(str(garbage))
    assert (failed.status_code, failed.code) == (44, "InvalidParameter")
    assert "cannot be decoded" in failed.message

    wrong_key = Recognition(
        model="paraformer-realtime-v2",
        format="pcm",
        sample_rate=RATE,
        callback=RecognitionCallback(),
        api_key="sk-x",
    )
    refused = wrong_key.call(str(pcm_file))
    assert refused.status_code == 401
    assert emulator.backend.counters.ws_tasks_failed == 2


def test_idle_stream_times_out(emulator: DashScopeEmulator) -> None:
    clock = manual_clock(emulator)
    callback = ParaformerEvents()
    recognition = Recognition(
        model="paraformer-realtime-v2", format="pcm", sample_rate=RATE, callback=callback
    )
    recognition.start()
    recognition.send_audio_frame(pitch_pcm((300,), seconds_each=0.1))
    assert emulator.backend.wait_for_counters(lambda c: c.ws_audio_frames == 1, WAIT_S)
    clock.advance(23)  # the service's idle limit, with no audio since that frame
    assert emulator.backend.wait_for_counters(lambda c: c.ws_tasks_failed == 1, WAIT_S)
    # The SDK only reads the socket between frames, so it sees the task-failed once it stops
    # sending; had the server not timed out, stop() would end in task-finished instead.
    recognition.stop()
    assert callback.failed.wait(5)
    assert not callback.complete.is_set()
    (error,) = callback.errors
    assert (error.status_code, error.code) == (44, "CLIENT_ERROR")
    assert error.message == "request timeout after 23 seconds."


class SlowFinalEngine(PitchEngine):
    """Holds the recognition that follows finish-task until told to go on."""

    def __init__(self) -> None:
        super().__init__()
        self.recognising = threading.Event()
        self.go_on = threading.Event()

    def recognize(self, audio: bytes | Path, **options: Any) -> EngineRecognition:
        self.recognising.set()
        assert self.go_on.wait(WAIT_S)
        return super().recognize(audio, **options)


def test_no_idle_limit_while_the_client_waits_for_the_last_results(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = SlowFinalEngine()
    clock = ManualClock()
    with DashScopeEmulator(api_keys=[KEY], engine=engine, clock=clock) as running:
        point_sdk_at(running, monkeypatch)
        callback = ParaformerEvents()
        recognition = Recognition(
            model="paraformer-realtime-v2", format="pcm", sample_rate=RATE, callback=callback
        )
        recognition.start()
        recognition.send_audio_frame(pitch_pcm((300,), seconds_each=0.1))
        stopping = threading.Thread(target=recognition.stop)  # sends finish-task, waits for the end
        stopping.start()
        assert engine.recognising.wait(WAIT_S)
        clock.advance(60)  # far past the idle limit, but the client is not idle: it waits for us
        assert not running.backend.wait_for_counters(lambda c: c.ws_tasks_failed > 0, timeout=0.5)
        engine.go_on.set()
        stopping.join(WAIT_S)
        assert callback.complete.is_set() and not callback.errors
        assert running.backend.counters.ws_tasks_finished == 1


def test_connection_reuse_with_a_new_task_id(emulator: DashScopeEmulator) -> None:
    async def session() -> list[list[str]]:
        events: list[list[str]] = []
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(emulator.ws_url + "/", headers=headers) as ws,
        ):
            for task_id in (uuid.uuid4().hex, uuid.uuid4().hex):
                seen: list[str] = []
                await ws.send_json(
                    {
                        "header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
                        "payload": {
                            "model": "paraformer-realtime-v2",
                            "task_group": "audio",
                            "task": "asr",
                            "function": "recognition",
                            "input": {},
                            "parameters": {"format": "pcm", "sample_rate": RATE},
                        },
                    }
                )
                seen.append((await ws.receive_json(timeout=5))["header"]["event"])
                await ws.send_bytes(pitch_pcm((300,)))
                await ws.send_json(
                    {
                        "header": {"action": "finish-task", "task_id": task_id, "streaming": "duplex"},
                        "payload": {"input": {}},
                    }
                )
                while seen[-1] not in ("task-finished", "task-failed"):
                    message = await ws.receive_json(timeout=5)
                    assert message["header"]["task_id"] == task_id
                    seen.append(message["header"]["event"])
                events.append(seen)
            # Reusing a finished task's id on the same connection is refused, and the socket closes.
            await ws.send_json(
                {
                    "header": {"action": "run-task", "task_id": task_id, "streaming": "duplex"},
                    "payload": {"model": "paraformer-realtime-v2", "parameters": {"format": "pcm"}},
                }
            )
            refused = await ws.receive_json(timeout=5)
            events.append([refused["header"]["event"], refused["header"]["error_code"]])
            closing = await ws.receive(timeout=5)
            events.append([closing.type.name])
        return events

    events = asyncio.run(asyncio.wait_for(session(), timeout=20))
    assert events[0][0] == "task-started" and events[0][-1] == "task-finished"
    assert "result-generated" in events[0]
    assert events[1][0] == "task-started" and events[1][-1] == "task-finished"
    assert events[2] == ["task-failed", "InvalidParameter"]
    assert events[3][0] in ("CLOSE", "CLOSED", "CLOSING")


# ---------------------------------------------------------------------------------------------
# What a caller needs after a lost answer: task listing, the job listing, forged pushes
# ---------------------------------------------------------------------------------------------


def test_a_slow_result_file_is_held_on_the_clock_without_blocking_other_downloads(
    emulator: DashScopeEmulator, files: FileServer
) -> None:
    clock = manual_clock(emulator)
    task_id = Transcription.async_call(
        model="paraformer-v2", file_urls=[files.url("one.wav"), files.url("three.wav")], api_key=KEY
    ).output.task_id
    first, second = (r["transcription_url"] for r in finished(emulator, task_id).output["results"])
    emulator.set_faults(FaultPlan(result_delay_s=5))
    answers: list[tuple[int, bytes]] = []
    downloads = [
        threading.Thread(target=lambda url=url: answers.append(http_get(url))) for url in (first, second)
    ]
    for download in downloads:
        download.start()
    assert clock.wait_for_waiting(2, WAIT_S)  # both held at once: one slow file does not queue the other
    assert answers == [] and emulator.backend.counters.result_downloads == 0
    clock.advance(5)
    for download in downloads:
        download.join(WAIT_S)
    assert sorted(status for status, _ in answers) == [200, 200]
    assert emulator.backend.counters.result_downloads == 2


def test_an_answer_delay_holds_each_api_answer_on_the_clock_and_nothing_else(
    emulator: DashScopeEmulator, files: FileServer
) -> None:
    """``answer_delay_s`` (a bench's model of a service across a network): every API answer waits
    on the clock, side by side; the emulator's own routes and the result files do not."""
    clock = manual_clock(emulator)
    submitted = Transcription.async_call(model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY)
    task_id = submitted.output.task_id
    (result_url,) = (r["transcription_url"] for r in finished(emulator, task_id).output["results"])
    emulator.set_faults(FaultPlan(answer_delay_s=0.2))
    answers: list[int] = []
    queries = [
        threading.Thread(target=lambda: answers.append(Transcription.fetch(task_id, api_key=KEY).status_code))
        for _ in range(2)
    ]
    for query in queries:
        query.start()
    assert clock.wait_for_waiting(2, WAIT_S)  # both held at once
    assert http_get(f"{emulator.url}/_emulator/counters")[0] == 200  # not held
    assert http_get(result_url)[0] == 200  # not held (result_delay_s holds these)
    assert answers == []
    clock.advance(0.2)
    for query in queries:
        query.join(WAIT_S)
    assert answers == [200, 200]


OTHER_KEY = "sk-someone-else"
TEAMMATE_KEY = "sk-same-account"


@pytest.fixture
def accounts(monkeypatch: pytest.MonkeyPatch) -> Iterator[DashScopeEmulator]:
    """KEY and TEAMMATE_KEY share an account; OTHER_KEY is another account."""
    with DashScopeEmulator(
        api_keys=[KEY, TEAMMATE_KEY, OTHER_KEY],
        engine=PitchEngine(),
        clock=ManualClock(),
        key_accounts={KEY: "team", TEAMMATE_KEY: "team"},
    ) as running:
        point_sdk_at(running, monkeypatch)
        yield running


def manual_clock(running: DashScopeEmulator) -> ManualClock:
    clock = running.clock
    assert isinstance(clock, ManualClock)
    return clock


def beijing(epoch_s: float) -> str:
    """The list API's time format: Beijing time, ``20230420000000``."""
    return time.strftime("%Y%m%d%H%M%S", time.gmtime(epoch_s + 8 * 3600))


def test_tasks_are_listed_per_account_newest_first_paged_and_filtered(
    accounts: DashScopeEmulator, files: FileServer
) -> None:
    clock = manual_clock(accounts)
    url = files.url("one.wav")
    submitted: list[tuple[str, float]] = []
    for model, key in (
        ("paraformer-v2", KEY),
        ("paraformer-8k-v2", TEAMMATE_KEY),
        ("paraformer-v2", OTHER_KEY),
        ("paraformer-v2", KEY),
    ):
        task_id = Transcription.async_call(model=model, file_urls=[url], api_key=key).output.task_id
        accounts.backend.wait_for_task(task_id, WAIT_S)
        submitted.append((task_id, clock.now()))
        clock.advance(3600)
    (first, t_first), (teammates, t_teammates), (foreign, _), (last, t_last) = submitted

    page = Transcription.list(page_size=2, api_key=KEY)
    assert page.status_code == 200, page
    assert page.request_id
    assert (page.output["total"], page.output["total_page"], page.output["page_no"]) == (3, 2, 1)
    assert [row["task_id"] for row in page.output["data"]] == [last, teammates]  # newest first
    second = Transcription.list(page_size=2, page_no=2, api_key=KEY)
    assert [row["task_id"] for row in second.output["data"]] == [first]
    row = second.output["data"][0]
    assert row["status"] == "SUCCEEDED" and row["model_name"] == "paraformer-v2"
    assert row["gmt_create"] == int(t_first * 1000) and row["end_time"] >= row["gmt_create"]
    assert row["user_api_unique_key"] == "apikey:v1:audio:asr:transcription:paraformer-v2"
    assert foreign not in {r["task_id"] for r in page.output["data"] + second.output["data"]}

    # A window around the second submission only, then the other filters.
    window = Transcription.list(
        start_time=beijing(t_teammates - 60), end_time=beijing(t_teammates + 60), api_key=KEY
    )
    assert [r["task_id"] for r in window.output["data"]] == [teammates]
    by_model = Transcription.list(model_name="paraformer-8k-v2", api_key=KEY)
    assert [r["task_id"] for r in by_model.output["data"]] == [teammates]
    by_key = Transcription.list(api_key_id=page.output["data"][0]["api_key_id"], api_key=KEY)
    assert [r["task_id"] for r in by_key.output["data"]] == [last, first]
    assert Transcription.list(status="RUNNING", api_key=KEY).output["total"] == 0
    assert [r["task_id"] for r in Transcription.list(api_key=OTHER_KEY).output["data"]] == [foreign]
    assert Transcription.list(start_time=beijing(t_last + 60), api_key=KEY).output["data"] == []

    refused = Transcription.list(page_size=0, api_key=KEY)
    assert (refused.status_code, refused.code) == (400, "InvalidParameter")
    assert Transcription.list(start_time="2024-01-01", api_key=KEY).status_code == 400
    assert Transcription.list(api_key="sk-nope").status_code == 401
    # Another account's task is as unknown to us as one that never existed.
    assert Transcription.fetch(foreign, api_key=KEY).output.task_status == "UNKNOWN"
    assert Transcription.fetch(teammates, api_key=KEY).output.task_status == "SUCCEEDED"


def test_a_lost_answer_leaves_a_task_that_listing_finds(
    emulator: DashScopeEmulator, files: FileServer
) -> None:
    emulator.set_faults(FaultPlan(lost_response_rate=1.0))  # mode "error" by default
    url = files.url("three.wav")
    lost = Transcription.async_call(model="paraformer-v2", file_urls=[url], api_key=KEY)
    assert (lost.status_code, lost.code) == (500, "InternalError")

    # The caller never saw the task id; listing the window and matching file URLs finds it.
    [listed] = Transcription.list(api_key=KEY).output["data"]
    done = finished(emulator, listed["task_id"])
    assert [r["file_url"] for r in done.output["results"]] == [url]
    [row] = emulator_jobs(emulator)
    assert (row["task_id"], row["file_url"], row["lost_response"], row["state"]) == (
        listed["task_id"],
        url,
        True,
        "finished",
    )
    counters = emulator.backend.counters
    assert (counters.tasks_created, counters.responses_lost, counters.submit_rejected) == (1, 1, 0)


def test_a_held_answer_ends_in_a_gateway_timeout_without_blocking_the_server(
    emulator: DashScopeEmulator, files: FileServer
) -> None:
    clock = manual_clock(emulator)
    emulator.set_faults(FaultPlan(lost_response_rate=1.0, lost_response_mode="hold", lost_response_hold_s=35))
    answers: list[Any] = []
    caller = threading.Thread(
        target=lambda: answers.append(
            Transcription.async_call(model="paraformer-v2", file_urls=[files.url("one.wav")], api_key=KEY)
        )
    )
    caller.start()
    assert clock.wait_for_waiting(1, WAIT_S)  # the answer is held
    [listed] = Transcription.list(api_key=KEY).output["data"]  # meanwhile the server answers others
    assert finished(emulator, listed["task_id"]).output.task_status == "SUCCEEDED"
    assert caller.is_alive()
    clock.advance(35)
    caller.join(WAIT_S)
    [answer] = answers
    assert (answer.status_code, answer.code) == (504, "RequestTimeOut")


def test_a_push_can_come_with_a_forged_one_for_a_task_we_cannot_see(
    monkeypatch: pytest.MonkeyPatch, files: FileServer
) -> None:
    receiver = PushReceiver()
    try:
        with DashScopeEmulator(
            api_keys=[KEY, OTHER_KEY],
            engine=PitchEngine(),
            push_target_url=receiver.url,
            faults=FaultPlan(callback_for_unknown_job=1.0),
        ) as running:
            point_sdk_at(running, monkeypatch)
            url = [files.url("one.wav")]
            foreign = Transcription.async_call(model="paraformer-v2", file_urls=url, api_key=OTHER_KEY)
            running.backend.wait_for_task(foreign.output.task_id, WAIT_S)
            ours = Transcription.async_call(model="paraformer-v2", file_urls=url, api_key=KEY)
            running.backend.wait_for_task(ours.output.task_id, WAIT_S)
            assert running.backend.wait_pushes_idle(WAIT_S)

            named = [event["data"]["task_id"] for _, event, _ in receiver.received]
            assert len(named) == 4 and running.backend.counters.pushes_forged == 2
            # Our task's forged twin names the other account's task ...
            assert sorted(named).count(foreign.output.task_id) == 2
            assert named.count(ours.output.task_id) == 1
            # ... and the other account's twin named a task nobody submitted.
            [phantom] = set(named) - {foreign.output.task_id, ours.output.task_id}
            for task_id in (phantom, foreign.output.task_id):
                assert Transcription.fetch(task_id, api_key=KEY).output.task_status == "UNKNOWN"
            assert running.backend.counters.pushes_sent == 2  # forged ones count only as forged
    finally:
        receiver.server.stop()


class HalfwayEngine(PitchEngine):
    """Reports a quarter of the file, then waits to be let go: a task caught mid-recognition."""

    def __init__(self) -> None:
        super().__init__()
        self.halfway = threading.Event()
        self.go_on = threading.Event()

    def recognize(
        self, audio: bytes | Path, *, on_progress: ProgressCallback | None = None, **options: Any
    ) -> EngineRecognition:
        assert on_progress is not None
        on_progress(750, 3000)
        self.halfway.set()
        assert self.go_on.wait(WAIT_S)
        return super().recognize(audio, on_progress=on_progress, **options)


def test_the_job_listing_has_a_row_per_file_with_its_progress(
    monkeypatch: pytest.MonkeyPatch, files: FileServer
) -> None:
    engine = HalfwayEngine()
    with DashScopeEmulator(
        api_keys=[KEY], engine=engine, clock=ManualClock(), faults=FaultPlan(processing_delay_s=60)
    ) as running:
        point_sdk_at(running, monkeypatch)
        urls = [files.url("three.wav"), DEAD_URL]
        task_id = Transcription.async_call(model="paraformer-v2", file_urls=urls, api_key=KEY).output.task_id
        queued = emulator_jobs(running)
        assert [(r["task_id"], r["file_url"], r["state"]) for r in queued] == [
            (task_id, urls[0], "queued"),
            (task_id, urls[1], "queued"),
        ]
        assert all(r["audio_ms_total"] is None and r["audio_ms_done"] == 0 for r in queued)

        # Another process moves the emulator's clock over HTTP: the processing delay is over.
        moved = requests.post(running.url + "/_emulator/clock", json={"advance_s": 60}, timeout=5)
        assert moved.status_code == 200 and moved.json()["manual"] is True
        assert engine.halfway.wait(WAIT_S)
        running_row = emulator_jobs(running)[0]
        assert (running_row["state"], running_row["audio_ms_total"], running_row["audio_ms_done"]) == (
            "running",
            3000,
            750,
        )
        engine.go_on.set()
        running.backend.wait_for_task(task_id, WAIT_S)
        done, dead = emulator_jobs(running)
        assert (done["state"], done["audio_ms_total"], done["audio_ms_done"]) == ("finished", 3000, 3000)
        assert (dead["state"], dead["audio_ms_total"], dead["audio_ms_done"]) == ("failed", None, 0)
        assert done["created_at"] < done["finished_at"] and done["lost_response"] is False

    with DashScopeEmulator(api_keys=[KEY], engine=PitchEngine()) as real_time:
        refused = requests.post(real_time.url + "/_emulator/clock", json={"advance_s": 1}, timeout=5)
        assert refused.status_code == 409


# ---------------------------------------------------------------------------------------------
# Streaming: each utterance is answered while the audio still arrives (a raw WebSocket client,
# which, unlike the SDK, reads while it sends, so the order of events is the proof)
# ---------------------------------------------------------------------------------------------


def loud(level: int, seconds: float) -> bytes:
    """A square wave of amplitude ``level * 1000``: what ``PeakEngine`` hears as "级别{level}。"."""
    amplitude = level * 1000
    return struct.pack(
        f"<{int(seconds * RATE)}h",
        *(amplitude if (i // 20) % 2 else -amplitude for i in range(int(seconds * RATE))),
    )


def quiet(seconds: float) -> bytes:
    return bytes(int(seconds * RATE) * 2)


class PeakEngine:
    """One segment over the loud part of what it is given, named after the peak: "级别N。"."""

    def recognize(self, audio: bytes | Path, **options: Any) -> EngineRecognition:
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        with wave.open(io.BytesIO(data)) as reader:
            rate = reader.getframerate()
            frames = reader.readframes(reader.getnframes())
        samples = struct.unpack(f"<{len(frames) // 2}h", frames)
        block = rate // 100
        loud_blocks = [
            i for i in range(0, len(samples), block) if max(map(abs, samples[i : i + block])) >= 500
        ]
        duration_ms = len(samples) * 1000 // rate
        if not loud_blocks:
            return EngineRecognition(duration_ms=duration_ms, segments=[])
        begin, end = loud_blocks[0] * 1000 // rate, min((loud_blocks[-1] + block) * 1000 // rate, duration_ms)
        text = f"级别{round(max(map(abs, samples)) / 1000)}。"
        words = [RecognizedWord(start_ms=begin, end_ms=end, text=text)]
        return EngineRecognition(
            duration_ms=duration_ms,
            segments=[RecognizedSegment(start_ms=begin, end_ms=end, text=text, words=words)],
        )


@pytest.fixture
def streaming() -> Iterator[DashScopeEmulator]:
    with DashScopeEmulator(
        api_keys=[KEY], engine=PeakEngine(), interim_interval_s=0.5, clock=ManualClock()
    ) as running:
        yield running


class RawTask:
    """One real-time task over a plain aiohttp WebSocket, in the SDK's frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, **parameters: Any) -> None:
        self.ws = ws
        self.task_id = uuid.uuid4().hex
        self.parameters = {"format": "pcm", "sample_rate": RATE, **parameters}
        self.events: list[dict[str, Any]] = []

    async def start(self, model: str = "paraformer-realtime-v2") -> dict[str, Any]:
        header = {"action": "run-task", "task_id": self.task_id, "streaming": "duplex"}
        payload = {"model": model, "task_group": "audio", "task": "asr", "function": "recognition"}
        await self.ws.send_json(
            {"header": header, "payload": {**payload, "input": {}, "parameters": self.parameters}}
        )
        return await self.next_event()

    async def send(self, pcm: bytes) -> None:
        for start in range(0, len(pcm), FRAME_BYTES):
            await self.ws.send_bytes(pcm[start : start + FRAME_BYTES])

    async def finish(self) -> list[dict[str, Any]]:
        header = {"action": "finish-task", "task_id": self.task_id, "streaming": "duplex"}
        await self.ws.send_json({"header": header, "payload": {"input": {}}})
        while (await self.next_event())["header"]["event"] == "result-generated":
            pass
        return self.events

    async def next_event(self) -> dict[str, Any]:
        event = await self.ws.receive_json(timeout=WAIT_S)
        assert event["header"]["task_id"] == self.task_id, "an event of another task on this socket"
        self.events.append(event)
        return event

    async def next_sentence(self) -> dict[str, Any]:
        event = await self.next_event()
        assert event["header"]["event"] == "result-generated", event
        return dict(event["payload"]["output"]["sentence"])

    async def next_final(self) -> dict[str, Any]:
        while not (sentence := await self.next_sentence())["sentence_end"]:
            pass
        return sentence


def finals_of(events: list[dict[str, Any]]) -> list[str]:
    sentences = [
        e["payload"]["output"]["sentence"] for e in events if e["header"]["event"] == "result-generated"
    ]
    return [s["text"] for s in sentences if s["sentence_end"]]


def stream_session(url: str, scenario: Callable[[aiohttp.ClientWebSocketResponse], Any]) -> Any:
    async def run() -> Any:
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(url, headers={"Authorization": f"Bearer {KEY}"}) as ws,
        ):
            return await scenario(ws)

    return asyncio.run(asyncio.wait_for(run(), timeout=30))


def test_each_utterance_is_answered_while_the_rest_is_still_to_be_sent(streaming: DashScopeEmulator) -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        task = RawTask(ws)
        assert (await task.start())["header"]["event"] == "task-started"
        await task.send(loud(3, 1.0) + quiet(1.0))  # the first utterance, then a pause
        first = await task.next_final()  # answered now: the second utterance is not sent yet
        await task.send(loud(5, 1.0) + quiet(0.3))
        return first, await task.finish()

    first, events = stream_session(streaming.ws_url, scenario)
    assert (first["text"], first["sentence_end"], first["sentence_id"]) == ("级别3。", True, 1)
    assert 0 <= first["begin_time"] <= first["end_time"] <= 1100
    assert finals_of(events) == ["级别3。", "级别5。"]
    assert events[-1]["header"]["event"] == "task-finished"
    second = [
        e["payload"]["output"]["sentence"] for e in events if e["header"]["event"] == "result-generated"
    ][-1]
    assert second["sentence_id"] == 2 and second["begin_time"] >= 1900  # stream time, not utterance time


def test_a_long_utterance_gets_interim_hypotheses_before_its_end(streaming: DashScopeEmulator) -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        task = RawTask(ws)
        await task.start()
        await task.send(loud(4, 3.0))  # still speaking: no pause yet
        interim = await task.next_sentence()
        return interim, await task.finish()

    interim, events = stream_session(streaming.ws_url, scenario)
    assert (interim["text"], interim["sentence_end"], interim["end_time"]) == ("级别4。", False, None)
    sentences = [
        e["payload"]["output"]["sentence"] for e in events if e["header"]["event"] == "result-generated"
    ]
    final = sentences[-1]
    assert final["sentence_end"] and final["text"] == "级别4。"
    assert {s["sentence_id"] for s in sentences} == {final["sentence_id"]}  # hypotheses of that sentence
    assert all(not s["sentence_end"] for s in sentences[:-1])


def test_concurrent_streams_never_mix_their_results(streaming: DashScopeEmulator) -> None:
    async def speak(ws: aiohttp.ClientWebSocketResponse, levels: tuple[int, int]) -> list[str]:
        task = RawTask(ws)
        await task.start("gummy-realtime-v1")
        for level in levels:
            await task.send(loud(level, 1.0) + quiet(1.0))
            await asyncio.sleep(0)  # let the other stream send too
        events = await task.finish()
        texts = []
        for event in events:
            transcription = event["payload"].get("output", {}).get("transcription")
            if transcription and transcription["sentence_end"]:
                texts.append(transcription["text"])
        return texts

    async def both() -> list[list[str]]:
        headers = {"Authorization": f"Bearer {KEY}"}
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(streaming.ws_url, headers=headers) as one,
            client.ws_connect(streaming.ws_url, headers=headers) as other,
        ):
            return list(await asyncio.gather(speak(one, (1, 2)), speak(other, (6, 7))))

    heard = asyncio.run(asyncio.wait_for(both(), timeout=30))
    assert heard == [["级别1。", "级别2。"], ["级别6。", "级别7。"]]
    assert streaming.backend.counters.ws_tasks_finished == 2


class HeldEngine(PeakEngine):
    """PeakEngine that holds every pass until ``release`` is set (a slow engine, in the test's hands)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def recognize(self, audio: bytes | Path, **options: Any) -> EngineRecognition:
        assert self.release.wait(WAIT_S), "the test never released the engine"
        return super().recognize(audio, **options)


def test_pings_are_answered_while_a_finishing_task_waits_for_its_last_passes() -> None:
    """The SDK's aiohttp pings every 30 s and drops a connection with no pong within 15 s; the last
    passes of a long stream on a busy machine take longer than that, so the socket must be read."""
    engine = HeldEngine()
    with DashScopeEmulator(
        api_keys=[KEY], engine=engine, interim_interval_s=60, clock=ManualClock()
    ) as running:

        async def run() -> tuple[aiohttp.WSMsgType, list[str]]:
            headers = {"Authorization": f"Bearer {KEY}"}
            async with (
                aiohttp.ClientSession() as client,
                client.ws_connect(running.ws_url, headers=headers, autoping=False) as ws,
            ):
                task = RawTask(ws)
                await task.start()
                await task.send(loud(3, 1.0))  # still speaking: its pass runs after finish-task
                header = {"action": "finish-task", "task_id": task.task_id, "streaming": "duplex"}
                await ws.send_json({"header": header, "payload": {"input": {}}})
                await ws.ping(b"still there?")
                answer = await ws.receive(timeout=WAIT_S)  # the pass is held: only a pong can come
                engine.release.set()
                while (await task.next_event())["header"]["event"] == "result-generated":
                    pass
                return answer.type, finals_of(task.events)

        answer, finals = asyncio.run(asyncio.wait_for(run(), timeout=30))
    assert answer is aiohttp.WSMsgType.PONG
    assert finals == ["级别3。"]


@pytest.mark.parametrize(
    ("model", "parameters", "named"),
    [
        ("gummy-realtime-v1", {"source_language": "xx"}, "source_language"),
        ("paraformer-realtime-v2", {"language_hints": ["en", "xx"]}, "language_hints"),
        ("gummy-realtime-v1", {"max_end_silence": 100}, "max_end_silence"),
        ("paraformer-realtime-v2", {"max_sentence_silence": 9000}, "max_sentence_silence"),
    ],
)
def test_unsupported_settings_are_parameter_errors_naming_the_parameter(
    streaming: DashScopeEmulator, model: str, parameters: dict[str, Any], named: str
) -> None:
    async def scenario(ws: aiohttp.ClientWebSocketResponse) -> dict[str, Any]:
        return await RawTask(ws, **parameters).start(model)

    refused = stream_session(streaming.ws_url, scenario)
    assert refused["header"]["event"] == "task-failed"
    assert refused["header"]["error_code"] == "InvalidParameter"
    assert named in refused["header"]["error_message"]

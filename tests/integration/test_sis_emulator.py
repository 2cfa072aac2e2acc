"""The real huaweicloudsdksis SDK against our SIS emulator, over HTTP on 127.0.0.1.

A small "customer site" serves the audio (a WAV made here with the stdlib) and receives the
callbacks, so every hop — SDK → emulator, emulator → data_url, emulator → callback_url — is real.
"""

from __future__ import annotations

import io
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from huaweicloudsdkcore.sdk_request import SdkRequest
from huaweicloudsdkcore.signer.signer import Signer
from huaweicloudsdksis.v1 import (
    AnalysisInfo,
    CollectTranscriberJobRequest,
    CollectTranscriberJobResponse,
    PostTranscriberJobs,
    PushTranscriberJobsRequest,
    SisClient,
    TranscriberConfig,
)

from bucketscribe.local.faults import FaultPlan
from bucketscribe.local.http_thread import BackgroundHttpServer
from bucketscribe.local.sis_server import SisEmulator
from bucketscribe.local.speech import (
    FixedSpeechEngine,
    Recognition,
    RecognizedSegment,
    UnreadableAudio,
)

pytestmark = pytest.mark.integration

FIXED_TEXT = "hello, world. this is the fixed transcript!"
WAIT_S = 5.0


def tone_wav(seconds: float = 0.5, rate: int = 16000) -> bytes:
    frames = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
        for i in range(int(seconds * rate))
    )
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(frames)
    return buffer.getvalue()


class RiffOnlyEngine(FixedSpeechEngine):
    """FixedSpeechEngine that, like a real decoder, refuses bytes that are not a RIFF/WAV file."""

    def recognize(self, audio: bytes | Path, **options: Any) -> Recognition:
        data = audio if isinstance(audio, bytes) else audio.read_bytes()
        if not data.startswith(b"RIFF"):
            raise UnreadableAudio("not a WAV file")
        return super().recognize(audio, **options)


class TwoVoicesEngine:
    """Says different things on the left and right channel, so channel handling is visible."""

    def __init__(self) -> None:
        self.channels_asked: list[int | None] = []

    def recognize(self, audio: bytes | Path, *, channel: int | None = None, **options: Any) -> Recognition:
        self.channels_asked.append(channel)
        if channel == 0:
            segments = [RecognizedSegment(start_ms=0, end_ms=1000, text="Left opens.")]
        else:
            segments = [RecognizedSegment(start_ms=500, end_ms=2000, text="Right replies.")]
        return Recognition(duration_ms=2000, segments=segments)


class ExplodingEngine:
    def recognize(self, audio: bytes | Path, **options: Any) -> Recognition:
        raise AssertionError("instant mode must not call the configured engine")


class CustomerSite:
    """Serves audio files and records callbacks (optionally refusing the first few)."""

    def __init__(self) -> None:
        self.files = {"tone.wav": tone_wav(), "notes.txt": b"these are meeting notes, not audio\n"}
        self._received: dict[str, list[dict[str, Any]]] = {}
        self._refuse_first: dict[str, int] = {}
        self._changed = threading.Condition()
        app = web.Application()
        app.router.add_get("/files/{name}", self._serve)
        app.router.add_post("/callbacks/{inbox}", self._accept)
        self.server = BackgroundHttpServer(app)

    @property
    def url(self) -> str:
        return self.server.url

    def new_inbox(self, refuse_first: int = 0) -> str:
        inbox = uuid.uuid4().hex
        with self._changed:
            self._received[inbox] = []
            self._refuse_first[inbox] = refuse_first
        return f"{self.url}/callbacks/{inbox}"

    def callbacks(self, inbox_url: str) -> list[dict[str, Any]]:
        with self._changed:
            return list(self._received[inbox_url.rsplit("/", 1)[1]])

    def wait_for_callbacks(self, inbox_url: str, count: int, timeout: float = WAIT_S) -> list[dict[str, Any]]:
        inbox = inbox_url.rsplit("/", 1)[1]
        with self._changed:
            self._changed.wait_for(lambda: len(self._received[inbox]) >= count, timeout=timeout)
            return list(self._received[inbox])

    async def _serve(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in self.files:
            raise web.HTTPNotFound()
        return web.Response(body=self.files[name])

    async def _accept(self, request: web.Request) -> web.Response:
        inbox = request.match_info["inbox"]
        body = await request.json()
        with self._changed:
            if self._refuse_first.get(inbox, 0) > 0:
                self._refuse_first[inbox] -= 1
                return web.Response(status=503)
            self._received[inbox].append(body)
            self._changed.notify_all()
        return web.Response(text="ok")


@pytest.fixture(scope="module")
def site() -> Iterator[CustomerSite]:
    customer = CustomerSite()
    customer.server.start()
    yield customer
    customer.server.stop()


@pytest.fixture
def start_emulator() -> Iterator[Callable[..., SisEmulator]]:
    started: list[SisEmulator] = []

    def start(**options: Any) -> SisEmulator:
        options.setdefault("engine", RiffOnlyEngine(FIXED_TEXT))
        options.setdefault("callback_backoff_s", 0.05)
        emulator = SisEmulator(**options).start()
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.stop()


def client_for(
    sis: SisEmulator, *, ak: str | None = None, sk: str | None = None, project_id: str | None = None
) -> Any:
    credentials = BasicCredentials(ak or sis.ak, sk or sis.sk, project_id or sis.project_id)
    return SisClient.new_builder().with_credentials(credentials).with_endpoint(sis.url).build()


def submit(client: Any, data_url: str, **config: Any) -> str:
    config.setdefault("audio_format", "auto")
    config.setdefault("_property", "chinese_16k_media")
    body = PostTranscriberJobs(config=TranscriberConfig(**config), data_url=data_url)
    return str(client.push_transcriber_jobs(PushTranscriberJobsRequest(body=body)).job_id)


def wait_until_done(client: Any, job_id: str, timeout: float = WAIT_S) -> CollectTranscriberJobResponse:
    deadline = time.monotonic() + timeout
    while True:
        response = client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id))
        if response.status != "WAITING" or time.monotonic() > deadline:
            return response
        time.sleep(0.02)


def raw(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.raw_content))


def test_submit_poll_and_callback_carry_the_same_result(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    client = client_for(sis)
    inbox = site.new_inbox()

    job_id = submit(client, f"{site.url}/files/tone.wav", need_word_info="yes", callback_url=inbox)
    done = wait_until_done(client, job_id)

    assert done.status == "FINISHED"
    body = raw(done)
    assert "job_id" not in body
    created = datetime.fromisoformat(body["create_time"])
    assert created.tzinfo is not None and body["create_time"].endswith("Z")
    assert (
        created <= datetime.fromisoformat(body["start_time"]) <= datetime.fromisoformat(body["finish_time"])
    )
    assert body["audio_duration"] == 7 * 300
    [segment] = body["segments"]
    assert (segment["start_time"], segment["end_time"]) == (0, 2100)
    assert segment["result"]["text"] == "hello world this is the fixed transcript"  # add_punc defaults to no
    assert "analysis_info" not in segment["result"]
    words = [w["word"] for w in segment["result"]["word_info"]]
    assert words == ["hello", "world", "this", "is", "the", "fixed", "transcript"]
    assert segment["result"]["word_info"][1] == {"start_time": 300, "end_time": 600, "word": "world"}

    [callback] = site.wait_for_callbacks(inbox, 1)
    assert callback == {"job_id": job_id, **body}
    assert sis.backend.wait_idle(WAIT_S)  # the receiver records before the emulator reads its 200
    counters = sis.backend.counters()
    assert (counters.submissions_received, counters.jobs_accepted, counters.callbacks_sent) == (1, 1, 1)
    assert sis.backend.job_stats(job_id).callbacks_sent == 1


def test_punctuation_kept_and_word_info_left_out_on_request(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    client = client_for(sis)
    done = wait_until_done(client, submit(client, f"{site.url}/files/tone.wav", add_punc="yes"))
    [segment] = raw(done)["segments"]
    assert segment["result"] == {"text": FIXED_TEXT}


def test_stereo_agent_channel_and_mono_speaker_roles(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    engine = TwoVoicesEngine()
    sis = start_emulator(engine=engine)
    client = client_for(sis)

    stereo = wait_until_done(
        client,
        submit(client, f"{site.url}/files/tone.wav", need_analysis_info=AnalysisInfo(channel="RIGHT_AGENT")),
    )
    segments = raw(stereo)["segments"]
    assert [
        (s["start_time"], s["result"]["text"], s["result"]["analysis_info"]["role"]) for s in segments
    ] == [
        (0, "Left opens", "USER"),
        (500, "Right replies", "AGENT"),
    ]
    assert sorted(c for c in engine.channels_asked if c is not None) == [0, 1]
    assert segments[0]["result"]["analysis_info"]["emotion"] in {"NORMAL", "ANGRY", "UNKNOWN"}
    assert segments[0]["result"]["analysis_info"]["speed"] == 2.0  # two words in one second

    mono = wait_until_done(
        client,
        submit(
            client,
            f"{site.url}/files/tone.wav",
            need_analysis_info=AnalysisInfo(diarization=True, channel="MONO", emotion=False, speed=False),
        ),
    )
    [segment] = raw(mono)["segments"]
    assert segment["result"]["analysis_info"] == {"role": "speaker1"}
    assert engine.channels_asked[-1] is None


def test_wrong_secret_unknown_key_and_foreign_project_are_refused(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    with pytest.raises(ClientRequestException) as wrong_secret:
        submit(client_for(sis, sk="not-the-secret"), f"{site.url}/files/tone.wav")
    assert wrong_secret.value.status_code == 401
    assert wrong_secret.value.error_code.startswith("APIGW.")

    with pytest.raises(ClientRequestException) as unknown_key:
        client_for(sis, ak="someone-else").collect_transcriber_job(CollectTranscriberJobRequest(job_id="x"))
    assert unknown_key.value.status_code == 401

    with pytest.raises(ClientRequestException) as foreign:
        submit(client_for(sis, project_id="another-project"), f"{site.url}/files/tone.wav")
    assert foreign.value.status_code == 403
    assert sis.backend.counters().submissions_received == 0


def _signed_get(sis: SisEmulator, path: str, sdk_date: datetime) -> urllib.request.Request:
    host = sis.url.removeprefix("http://")
    request = SdkRequest(
        method="GET",
        schema="http",
        host=host,
        resource_path=path,
        query_params=[],
        header_params={"X-Sdk-Date": sdk_date.strftime("%Y%m%dT%H%M%SZ"), "X-Project-Id": sis.project_id},
        body="",
    )
    Signer(BasicCredentials(sis.ak, sis.sk)).sign(request)
    return urllib.request.Request(f"{sis.url}{path}", headers=request.header_params, method="GET")


def _status_of(request: urllib.request.Request) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(request, timeout=WAIT_S) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


def test_stale_or_missing_signature_is_refused(start_emulator: Callable[..., SisEmulator]) -> None:
    sis = start_emulator()
    path = f"/v1/{sis.project_id}/asr/transcriber/jobs/no-such-job"
    now = datetime.now(UTC)

    # A fresh hand-signed request passes authentication (and reaches the missing-job check) ...
    status, body = _status_of(_signed_get(sis, path, now))
    assert (status, body["error_msg"]) == (400, "task id is not found")
    # ... the same request signed 20 minutes ago does not.
    status, body = _status_of(_signed_get(sis, path, now - timedelta(minutes=20)))
    assert status == 401 and body["error_code"] == "APIGW.0301"

    status, body = _status_of(urllib.request.Request(f"{sis.url}{path}"))
    assert status == 401 and body["error_code"] == "APIGW.0301"
    malformed = urllib.request.Request(f"{sis.url}{path}", headers={"Authorization": "Bearer abc"})
    assert _status_of(malformed)[0] == 401


@pytest.mark.parametrize(
    ("config", "data_url", "error_code"),
    [
        ({"audio_format": "auto"}, "files/tone.wav", "SIS.0012"),  # property left out
        ({"_property": "chinese_16k_media"}, "files/tone.wav", "SIS.0012"),  # audio_format left out
        ({"audio_format": "auto", "_property": "klingon_16k_media"}, "files/tone.wav", "SIS.0032"),
        ({"audio_format": "flac", "_property": "chinese_16k_media"}, "files/tone.wav", "SIS.0032"),
        (
            {"audio_format": "auto", "_property": "chinese_16k_media", "add_punc": "maybe"},
            "files/tone.wav",
            "SIS.0032",
        ),
        (
            {
                "audio_format": "auto",
                "_property": "chinese_16k_media",
                "callback_url": "https://x/" + "a" * 2048,
            },
            "files/tone.wav",
            "SIS.0032",
        ),
        ({"audio_format": "auto", "_property": "chinese_16k_media"}, None, "SIS.0012"),
    ],
)
def test_invalid_submissions_get_sis_errors(
    site: CustomerSite,
    start_emulator: Callable[..., SisEmulator],
    config: dict[str, Any],
    data_url: str | None,
    error_code: str,
) -> None:
    sis = start_emulator()
    body = PostTranscriberJobs(
        config=TranscriberConfig(**config), data_url=f"{site.url}/{data_url}" if data_url else None
    )
    with pytest.raises(ClientRequestException) as refused:
        client_for(sis).push_transcriber_jobs(PushTranscriberJobsRequest(body=body))
    assert (refused.value.status_code, refused.value.error_code) == (400, error_code)
    assert sis.backend.counters().submissions_rejected == 1


def test_concurrency_limit_answers_sis_0312(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(max_concurrent_jobs=2, faults=FaultPlan(processing_delay_s=30))
    client = client_for(sis)
    submit(client, f"{site.url}/files/tone.wav")
    submit(client, f"{site.url}/files/tone.wav")
    with pytest.raises(ClientRequestException) as limited:
        submit(client, f"{site.url}/files/tone.wav")
    assert (limited.value.status_code, limited.value.error_code) == (429, "SIS.0312")
    assert sis.backend.counters().jobs_accepted == 2


def test_results_expire_after_the_retention_window(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(retention_s=0.3)
    client = client_for(sis)
    job_id = submit(client, f"{site.url}/files/tone.wav")
    assert wait_until_done(client, job_id).status == "FINISHED"
    time.sleep(0.4)
    with pytest.raises(ClientRequestException) as expired:
        client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id))
    assert expired.value.error_msg == "task id is not found"


def test_dropped_callbacks_never_arrive(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(drop_callback_rate=1.0))
    client = client_for(sis)
    inbox = site.new_inbox()
    job_id = submit(client, f"{site.url}/files/tone.wav", callback_url=inbox)
    assert wait_until_done(client, job_id).status == "FINISHED"
    assert sis.backend.wait_idle(WAIT_S)
    assert site.wait_for_callbacks(inbox, 1, timeout=0.3) == []
    stats = sis.backend.job_stats(job_id)
    assert (stats.callbacks_dropped, stats.callback_attempts, stats.callbacks_sent) == (1, 0, 0)


def test_duplicated_callbacks_arrive_twice(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(duplicate_callback_rate=1.0))
    client = client_for(sis)
    inbox = site.new_inbox()
    job_id = submit(client, f"{site.url}/files/tone.wav", callback_url=inbox)
    first, second = site.wait_for_callbacks(inbox, 2)
    assert first == second and first["job_id"] == job_id
    assert sis.backend.wait_idle(WAIT_S)
    assert sis.backend.counters().callbacks_sent == 2


def test_refused_callback_is_retried_and_delayed_on_request(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(callback_delay_s=0.4))
    client = client_for(sis)
    inbox = site.new_inbox(refuse_first=1)
    job_id = submit(client, f"{site.url}/files/tone.wav", callback_url=inbox)
    [callback] = site.wait_for_callbacks(inbox, 1)
    received_at = datetime.now(UTC)
    assert received_at - datetime.fromisoformat(callback["finish_time"]) >= timedelta(seconds=0.4)
    assert sis.backend.wait_idle(WAIT_S)
    stats = sis.backend.job_stats(job_id)
    assert (stats.callback_attempts, stats.callbacks_sent, stats.callbacks_failed) == (2, 1, 0)


def test_injected_submission_failure_and_runtime_fault_change(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(submit_error_rate=1.0, submit_error_status=429))
    client = client_for(sis)
    with pytest.raises(ClientRequestException) as throttled:
        submit(client, f"{site.url}/files/tone.wav")
    assert (throttled.value.status_code, throttled.value.error_code) == (429, "SIS.0312")

    # The local stack turns faults off over HTTP while the emulator runs.
    reset = urllib.request.Request(
        f"{sis.url}/_emulator/faults",
        data=json.dumps({}).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    assert _status_of(reset) == (200, FaultPlan().model_dump())
    assert wait_until_done(client, submit(client, f"{site.url}/files/tone.wav")).status == "FINISHED"
    counters = sis.backend.counters()
    assert (counters.submissions_received, counters.submissions_rejected, counters.jobs_accepted) == (2, 1, 1)


def test_jobs_that_cannot_finish_end_in_error(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    client = client_for(sis)
    inbox = site.new_inbox()

    not_audio = wait_until_done(client, submit(client, f"{site.url}/files/notes.txt", callback_url=inbox))
    assert not_audio.status == "ERROR"
    assert raw(not_audio)["error_code"] == "SIS.0535"
    assert not_audio.start_time and not_audio.finish_time and not not_audio.segments
    [callback] = site.wait_for_callbacks(inbox, 1)
    assert callback["status"] == "ERROR"

    missing = wait_until_done(client, submit(client, f"{site.url}/files/missing.wav"))
    assert (missing.status, raw(missing)["error_code"]) == ("ERROR", "SIS.0001")

    sis.set_faults(FaultPlan(job_failure_rate=1.0))
    failed = wait_until_done(client, submit(client, f"{site.url}/files/tone.wav"))
    assert (failed.status, raw(failed)["error_code"]) == ("ERROR", "SIS.0100")
    assert sis.backend.counters().jobs_failed == 3


def test_instant_mode_skips_the_engine_but_still_fetches_the_audio(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(engine=ExplodingEngine(), faults=FaultPlan(instant=True))
    client = client_for(sis)
    done = wait_until_done(client, submit(client, f"{site.url}/files/tone.wav"))
    assert done.status == "FINISHED" and done.segments[0].result.text
    unreachable = wait_until_done(client, submit(client, f"{site.url}/files/missing.wav"))
    assert unreachable.status == "ERROR"

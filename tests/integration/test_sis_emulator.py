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
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.sis_server import SisEmulator
from bucketscribe_local.speech import (
    FixedSpeechEngine,
    ProgressCallback,
    Recognition,
    RecognizedSegment,
    UnreadableAudio,
)
from huaweicloudsdkcore.auth.credentials import BasicCredentials
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException, ServerResponseException
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


def wait_until_done(sis: SisEmulator, client: Any, job_id: str) -> CollectTranscriberJobResponse:
    """Wait (on the emulator's own notification) until the job ended, then ask for it through the SDK."""
    sis.backend.wait_for_job(job_id, WAIT_S)
    return client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id))


def raw(response: Any) -> dict[str, Any]:
    return dict(json.loads(response.raw_content))


def emulator_jobs(sis: SisEmulator) -> list[dict[str, Any]]:
    """``GET /_emulator/jobs``: what the CLI's progress display and the soak benchmark read."""
    status, body = _status_of(urllib.request.Request(f"{sis.url}/_emulator/jobs"))
    assert status == 200
    return list(body["jobs"])


def test_submit_poll_and_callback_carry_the_same_result(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    client = client_for(sis)
    inbox = site.new_inbox()

    job_id = submit(client, f"{site.url}/files/tone.wav", need_word_info="yes", callback_url=inbox)
    done = wait_until_done(sis, client, job_id)

    assert done.status == "FINISHED"
    body = raw(done)
    assert "job_id" not in body
    created = datetime.fromisoformat(body["create_time"])
    assert created.tzinfo is not None and body["create_time"].endswith("Z")
    assert (
        created <= datetime.fromisoformat(body["start_time"]) <= datetime.fromisoformat(body["finish_time"])
    )
    # As SIS reports it: the recording's length (0.5 s of tone), not what the instant engine "heard".
    assert body["audio_duration"] == 500
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
    done = wait_until_done(sis, client, submit(client, f"{site.url}/files/tone.wav", add_punc="yes"))
    [segment] = raw(done)["segments"]
    assert segment["result"] == {"text": FIXED_TEXT}


def test_stereo_agent_channel_and_mono_speaker_roles(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    engine = TwoVoicesEngine()
    sis = start_emulator(engine=engine)
    client = client_for(sis)

    stereo = wait_until_done(
        sis,
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
        sis,
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


def test_results_expire_72_hours_after_finishing_or_after_the_fault_plan_says(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    clock = ManualClock()
    sis = start_emulator(clock=clock)
    client = client_for(sis)
    job_id = submit(client, f"{site.url}/files/tone.wav")
    assert wait_until_done(sis, client, job_id).status == "FINISHED"
    clock.advance(72 * 3600 - 1)
    assert client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id)).status == "FINISHED"
    clock.advance(1)
    with pytest.raises(ClientRequestException) as expired:
        client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=job_id))
    assert (expired.value.status_code, expired.value.error_msg) == (400, "task id is not found")

    sis.set_faults(FaultPlan(result_expiry_s=60))
    short_lived = submit(client, f"{site.url}/files/tone.wav")
    assert wait_until_done(sis, client, short_lived).status == "FINISHED"
    clock.advance(59)
    assert (
        client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=short_lived)).status == "FINISHED"
    )
    clock.advance(1)
    with pytest.raises(ClientRequestException, match="task id is not found"):
        client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=short_lived))
    states = {row["task_id"]: row["state"] for row in emulator_jobs(sis)}
    assert states == {job_id: "expired", short_lived: "expired"}
    assert sis.backend.counters().jobs_expired == 2


def test_dropped_callbacks_never_arrive(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(drop_callback_rate=1.0))
    client = client_for(sis)
    inbox = site.new_inbox()
    job_id = submit(client, f"{site.url}/files/tone.wav", callback_url=inbox)
    assert wait_until_done(sis, client, job_id).status == "FINISHED"
    assert sis.backend.wait_idle(WAIT_S)  # a callback, had one been sent, would have ended by now
    assert site.callbacks(inbox) == []
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
    clock = ManualClock()
    sis = start_emulator(faults=FaultPlan(callback_delay_s=40), clock=clock, callback_backoff_s=5)
    client = client_for(sis)
    inbox = site.new_inbox(refuse_first=1)
    job_id = submit(client, f"{site.url}/files/tone.wav", callback_url=inbox)
    sis.backend.wait_for_job(job_id, WAIT_S)

    assert clock.wait_for_waiting(1, WAIT_S)  # the callback is parked on the clock ...
    clock.advance(39)
    assert sis.backend.job_stats(job_id).callback_attempts == 0  # ... until the delay has passed
    clock.advance(1)
    assert sis.backend.wait_for_counters(lambda c: c.callback_attempts == 1, WAIT_S)
    assert clock.wait_for_waiting(1, WAIT_S)  # refused: the retry waits out its backoff
    assert site.callbacks(inbox) == []
    clock.advance(5)
    [callback] = site.wait_for_callbacks(inbox, 1)
    assert callback["job_id"] == job_id
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
    assert wait_until_done(sis, client, submit(client, f"{site.url}/files/tone.wav")).status == "FINISHED"
    counters = sis.backend.counters()
    assert (counters.submissions_received, counters.submissions_rejected, counters.jobs_accepted) == (2, 1, 1)


def test_jobs_that_cannot_finish_end_in_error(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator()
    client = client_for(sis)
    inbox = site.new_inbox()

    not_audio = wait_until_done(
        sis, client, submit(client, f"{site.url}/files/notes.txt", callback_url=inbox)
    )
    assert not_audio.status == "ERROR"
    assert raw(not_audio)["error_code"] == "SIS.0535"
    assert not_audio.start_time and not_audio.finish_time and not not_audio.segments
    [callback] = site.wait_for_callbacks(inbox, 1)
    assert callback["status"] == "ERROR"

    missing = wait_until_done(sis, client, submit(client, f"{site.url}/files/missing.wav"))
    assert (missing.status, raw(missing)["error_code"]) == ("ERROR", "SIS.0001")

    sis.set_faults(FaultPlan(job_failure_rate=1.0))
    failed = wait_until_done(sis, client, submit(client, f"{site.url}/files/tone.wav"))
    assert (failed.status, raw(failed)["error_code"]) == ("ERROR", "SIS.0100")
    assert sis.backend.counters().jobs_failed == 3


def test_instant_mode_skips_the_engine_but_still_fetches_the_audio(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(engine=ExplodingEngine(), faults=FaultPlan(instant=True))
    client = client_for(sis)
    done = wait_until_done(sis, client, submit(client, f"{site.url}/files/tone.wav"))
    assert done.status == "FINISHED" and done.segments[0].result.text
    unreachable = wait_until_done(sis, client, submit(client, f"{site.url}/files/missing.wav"))
    assert unreachable.status == "ERROR"


class HalfwayEngine(FixedSpeechEngine):
    """Reports a quarter of a 4 s recording, then waits to be let go: a job caught mid-recognition."""

    def __init__(self) -> None:
        super().__init__(FIXED_TEXT)
        self.halfway = threading.Event()
        self.go_on = threading.Event()

    def recognize(
        self, audio: bytes | Path, *, on_progress: ProgressCallback | None = None, **options: Any
    ) -> Recognition:
        assert on_progress is not None
        on_progress(1000, 4000)
        self.halfway.set()
        assert self.go_on.wait(WAIT_S)
        on_progress(4000, 4000)
        return Recognition(
            duration_ms=4000, segments=[RecognizedSegment(start_ms=0, end_ms=4000, text="done")]
        )


def test_job_listing_follows_a_job_from_queued_to_finished(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    engine = HalfwayEngine()
    sis = start_emulator(engine=engine, clock=ManualClock(), faults=FaultPlan(processing_delay_s=600))
    client = client_for(sis)
    data_url = f"{site.url}/files/tone.wav"
    job_id = submit(client, data_url)

    [queued] = emulator_jobs(sis)
    assert queued == {
        "task_id": job_id,
        "file_url": data_url,
        "state": "queued",
        "created_at": queued["created_at"],
        "finished_at": None,
        "audio_ms_total": None,
        "audio_ms_done": 0,
        "lost_response": False,
    }
    # An out-of-process driver moves the clock over HTTP: the processing delay is over.
    status, clock_state = _status_of(
        urllib.request.Request(
            f"{sis.url}/_emulator/clock", data=json.dumps({"advance_s": 600}).encode(), method="POST"
        )
    )
    assert status == 200 and clock_state["manual"] is True
    assert engine.halfway.wait(WAIT_S)
    [running] = emulator_jobs(sis)
    assert (running["state"], running["audio_ms_total"], running["audio_ms_done"]) == ("running", 4000, 1000)

    engine.go_on.set()
    sis.backend.wait_for_job(job_id, WAIT_S)
    [finished] = emulator_jobs(sis)
    assert (finished["state"], finished["audio_ms_total"], finished["audio_ms_done"]) == (
        "finished",
        4000,
        4000,
    )
    created = datetime.fromisoformat(finished["created_at"])
    assert datetime.fromisoformat(finished["finished_at"]) - created == timedelta(seconds=600)


def test_the_clock_route_refuses_to_move_real_time(start_emulator: Callable[..., SisEmulator]) -> None:
    sis = start_emulator()
    request = urllib.request.Request(
        f"{sis.url}/_emulator/clock", data=json.dumps({"advance_s": 5}).encode(), method="POST"
    )
    status, body = _status_of(request)
    assert status == 409 and "real time" in body["message"]


def test_a_lost_answer_still_creates_the_job(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(lost_response_rate=1.0, lost_response_mode="error"))
    client = client_for(sis)
    with pytest.raises(ServerResponseException) as lost:
        submit(client, f"{site.url}/files/tone.wav")
    assert (lost.value.status_code, lost.value.error_code) in {(500, "SIS.0100"), (502, "APIGW.0202")}

    [job] = emulator_jobs(sis)  # the caller never learnt its id, but the job exists and runs
    assert job["lost_response"] is True
    stats = sis.backend.wait_for_job(job["task_id"], WAIT_S)
    assert stats.status == "FINISHED"
    counters = sis.backend.counters()
    assert (counters.jobs_accepted, counters.responses_lost, counters.submissions_rejected) == (1, 1, 0)


def test_a_held_answer_times_out_without_holding_up_other_requests(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    clock = ManualClock()
    sis = start_emulator(clock=clock, faults=FaultPlan(lost_response_rate=1.0, lost_response_mode="hold"))
    outcome: list[BaseException] = []

    def held_submit() -> None:
        try:
            submit(client_for(sis), f"{site.url}/files/tone.wav")
        except BaseException as error:
            outcome.append(error)

    caller = threading.Thread(target=held_submit)
    caller.start()
    assert clock.wait_for_waiting(1, WAIT_S)  # the answer is being held
    [held] = emulator_jobs(sis)
    sis.set_faults(FaultPlan())
    client = client_for(sis)
    other = submit(client, f"{site.url}/files/tone.wav")  # answered at once meanwhile
    assert wait_until_done(sis, client, other).status == "FINISHED"
    assert caller.is_alive()

    clock.advance(35)  # lost_response_hold_s: the gateway gives up
    caller.join(WAIT_S)
    [error] = outcome
    assert isinstance(error, ServerResponseException)
    assert (error.status_code, error.error_code) == (504, "APIGW.0201")
    assert {row["task_id"]: row["lost_response"] for row in emulator_jobs(sis)} == {
        held["task_id"]: True,
        other: False,
    }


def test_an_answer_delay_holds_each_api_answer_on_the_clock_and_nothing_else(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    """``answer_delay_s`` (a bench's model of a service across a network): submissions and queries
    wait on the clock, side by side; the emulator's own routes do not."""
    clock = ManualClock()
    sis = start_emulator(clock=clock, faults=FaultPlan(answer_delay_s=0.2))
    job_ids: list[str] = []
    callers = [
        threading.Thread(target=lambda: job_ids.append(submit(client_for(sis), f"{site.url}/files/tone.wav")))
        for _ in range(2)
    ]
    for caller in callers:
        caller.start()
    assert clock.wait_for_waiting(2, WAIT_S)  # both held at once
    with urllib.request.urlopen(f"{sis.url}/_emulator/counters", timeout=WAIT_S) as answer:
        assert answer.status == 200  # not held
    assert job_ids == []
    clock.advance(0.2)
    for caller in callers:
        caller.join(WAIT_S)
    assert len(job_ids) == 2


def test_a_callback_can_come_with_a_forged_one_naming_another_job(
    site: CustomerSite, start_emulator: Callable[..., SisEmulator]
) -> None:
    sis = start_emulator(faults=FaultPlan(callback_for_unknown_job=1.0))
    client = client_for(sis)
    first_inbox, second_inbox = site.new_inbox(), site.new_inbox()
    first = submit(client, f"{site.url}/files/tone.wav", callback_url=first_inbox)
    sis.backend.wait_for_job(first, WAIT_S)
    second = submit(client, f"{site.url}/files/tone.wav", callback_url=second_inbox)
    sis.backend.wait_for_job(second, WAIT_S)

    # The first job had no other job to name: its forged twin carries an id SIS never handed out.
    first_ids = {body["job_id"] for body in site.wait_for_callbacks(first_inbox, 2)}
    assert first in first_ids and len(first_ids) == 2
    assert not (first_ids - {first}) & set(sis.backend.job_ids())
    # The second job's inbox also gets the first job's whole result, under the first job's id.
    by_id = {body["job_id"]: body for body in site.wait_for_callbacks(second_inbox, 2)}
    assert set(by_id) == {first, second}
    first_status = raw(client.collect_transcriber_job(CollectTranscriberJobRequest(job_id=first)))
    assert by_id[first] == {"job_id": first, **first_status}
    assert sis.backend.wait_idle(WAIT_S)
    counters = sis.backend.counters()
    assert (counters.callbacks_forged, counters.callbacks_sent) == (2, 2)

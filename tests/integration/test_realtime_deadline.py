"""The pipeline's real-time adapter (``DashScopeRealtimeProvider``, the real SDK) cuts a stream at the
time it was given, so a worker never streams past its run or its lease, against the emulator."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.speech import Recognition

from bucketscribe.domain.profile import Profile
from bucketscribe.ports.media_tools import SpeechPcm
from bucketscribe.ports.provider import STREAM_CUT_AT_DEADLINE, ProviderError
from bucketscribe.providers.dashscope.realtime import DashScopeRealtimeProvider, RealtimeStreamer
from tests.level_audio import LevelEngine, level_pcm

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

KEY = "sk-realtime-deadline"
LIVE = Profile.model_validate({"name": "live", "prefix": "live/", "provider": "dashscope-realtime"})


class StalledEngine(LevelEngine):
    """Never answers until the test lets it: a service far slower than the time the stream has."""

    def __init__(self) -> None:
        super().__init__()
        self.release = threading.Event()

    def recognize(self, audio: bytes | Path, **options: Any) -> Recognition:
        self.release.wait(30)
        return super().recognize(audio, **options)


def test_a_stream_that_does_not_end_within_its_time_is_cut_with_a_retryable_reason() -> None:
    engine = StalledEngine()
    with DashScopeEmulator(api_keys=[KEY], engine=engine, interim_interval_s=60) as emulator:
        # Waiting for task-finished could take 20 s; the stream was given 1 s.
        streamer = RealtimeStreamer(api_key=KEY, websocket_url=emulator.ws_url, finish_timeout_s=20.0)
        speech = SpeechPcm(tracks=[level_pcm([3, 0, 5])], source_channels=1)
        try:
            with pytest.raises(ProviderError) as cut:
                DashScopeRealtimeProvider(streamer).stream(speech, LIVE, within=timedelta(seconds=1))
        finally:
            engine.release.set()
    assert cut.value.code == STREAM_CUT_AT_DEADLINE and cut.value.retryable
    assert "1 s" in cut.value.message

"""`bucketscribe up --cloud huawei` and `transcribe --cloud huawei` as a user runs them
(subprocesses, instant engine): an upload through Huawei's own OBS SDK becomes transcripts."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.audio import tone_wav
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def test_up_as_huawei_turns_an_obs_sdk_upload_into_transcripts() -> None:
    from obs import ObsClient

    process = subprocess.Popen(
        [sys.executable, "-m", "bucketscribe.cli", "up", "--instant", "--port", "0", "--cloud", "huawei"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = ""
        deadline = time.monotonic() + 60
        while "Ctrl-C stops." not in banner and time.monotonic() < deadline:
            banner += process.stdout.readline()
        match = re.search(r"OBS endpoint\s+(http://127\.0\.0\.1:\d+)", banner)
        assert match, f"up never printed its endpoint: {banner}"
        endpoint = match.group(1)
        assert "as on FunctionGraph" in banner
        obs = ObsClient(
            access_key_id="local-access-key",
            secret_access_key="local-secret-key",
            server=endpoint,
            signature="v4",
            region="us-east-1",
            path_style=True,
            is_signature_negotiation=False,
        )
        assert obs.putContent("recordings", "incoming/from-obs-sdk.wav", tone_wav(1)).status == 200

        def transcripts() -> list[str]:
            listed = obs.listObjects("recordings", prefix="transcripts/")
            return [item.key for item in listed.body.contents or []]

        wait_until(
            lambda: "transcripts/from-obs-sdk.wav.txt" in transcripts(),
            timeout_s=max(deadline - time.monotonic(), 0),
            what="the transcript through the OBS SDK",
        )
        assert "transcripts/from-obs-sdk.wav.txt" in transcripts()
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0 and "Stopping." in output


def test_transcribe_as_huawei_writes_the_outputs(tmp_path: Path) -> None:
    recording = tmp_path / "call.wav"
    recording.write_bytes(tone_wav(1))
    out = tmp_path / "out"
    command = ["transcribe", str(recording), "--instant", "--cloud", "huawei", "--out", str(out)]
    result = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", *command, "--timeout", "60"],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for suffix in ("json", "txt", "srt", "vtt"):
        assert (out / f"call.wav.{suffix}").stat().st_size > 0

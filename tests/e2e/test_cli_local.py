"""`bucketscribe up` and `bucketscribe transcribe` as a user runs them (subprocesses, instant engine)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.audio import tone_wav

pytestmark = pytest.mark.e2e


def test_transcribe_writes_outputs_and_names_each_bad_file(tmp_path: Path) -> None:
    good = tmp_path / "meeting notes.wav"
    good.write_bytes(tone_wav(1))
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio at all\n")
    readme = tmp_path / "README.md"
    readme.write_text("# hi\n")
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bucketscribe.cli",
            "transcribe",
            str(good),
            str(fake),
            str(readme),
            str(tmp_path / "missing.wav"),
            "--instant",
            "--out",
            str(out),
            "--timeout",
            "60",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"{readme}: not an audio or video file" in result.stdout
    assert f"{tmp_path / 'missing.wav'}: no such file" in result.stdout
    assert "fake.wav: failed: the content is not audio or video" in result.stdout
    for suffix in ("json", "txt", "srt", "vtt"):
        assert (out / f"meeting notes.wav.{suffix}").stat().st_size > 0
    assert (out / "fake.wav.error.json").exists()
    # Progress: each file's states in order, as lines (stdout is not a TTY here).
    states = re.findall(r"meeting notes\.wav\s+(\w+)", result.stdout)
    order = ["uploaded", "queued", "transcribing", "done"]
    assert states[-1] == "done" and len(states) >= 2
    assert states == sorted(states, key=order.index)  # each change printed once, in order


def test_up_serves_an_s3_endpoint_where_uploads_become_transcripts(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "bucketscribe.cli", "up", "--instant", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        endpoint = ""
        deadline = time.monotonic() + 60
        while not endpoint and time.monotonic() < deadline:
            line = process.stdout.readline()
            match = re.search(r"S3 endpoint\s+(http://127\.0\.0\.1:\d+)", line)
            endpoint = match.group(1) if match else ""
        assert endpoint, "up never printed its S3 endpoint"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="local-access-key",
            aws_secret_access_key="local-secret-key",
        )
        s3.put_object(Bucket="recordings", Key="incoming/from-user.wav", Body=tone_wav(1))
        keys: list[str] = []
        while time.monotonic() < deadline and "transcripts/from-user.wav.txt" not in keys:
            time.sleep(0.3)
            keys = [
                o["Key"]
                for o in s3.list_objects_v2(Bucket="recordings", Prefix="transcripts/").get("Contents", [])
            ]
        assert "transcripts/from-user.wav.txt" in keys
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=30)
    assert process.returncode == 0
    assert "Stopping." in output

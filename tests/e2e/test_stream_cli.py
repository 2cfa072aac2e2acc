"""`bucketscribe stream` as a user runs it: a subprocess, the local DashScope emulator, Whisper."""

from __future__ import annotations

import os
import subprocess
import sys
import wave
from pathlib import Path

import pytest
import srt
import webvtt

from bucketscribe.local.scoring import word_error_rate
from bucketscribe.model import Transcript
from bucketscribe.samples import sample
from tests.cli_process import CliProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

SAMPLES = ("hello_en.wav", "weather_en.ogg")


def test_stream_transcribes_and_translates_many_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUCKETSCRIBE_DASHSCOPE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bucketscribe.cli",
            "stream",
            *(str(sample(name).path) for name in SAMPLES),
            "--translate",
            "en",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
        env=env,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, log
    assert result.stdout.startswith(
        "No BUCKETSCRIBE_DASHSCOPE_API_KEY set: streaming to a local DashScope emulator"
    )

    for name in SAMPLES:
        lines = [line.split(name, 1)[1].strip() for line in result.stdout.splitlines() if name in line]
        assert [line.split(" ", 1)[0] for line in lines] == ["queued", "streaming", "done"], log

        transcript = Transcript.model_validate_json((out / f"{name}.json").read_text(encoding="utf-8"))
        assert (transcript.provider, transcript.model) == ("dashscope", "gummy-realtime-v1")
        assert transcript.segments and all(s.words for s in transcript.segments)
        assert word_error_rate(sample(name).text, transcript.text) <= 0.3, transcript.text
        (translation,) = transcript.translations
        assert translation.language == "en" and translation.segments
        assert (out / f"{name}.txt").read_text(encoding="utf-8").strip()

        cues = list(srt.parse((out / f"{name}.srt").read_text(encoding="utf-8")))
        assert cues and all(c.end > c.start for c in cues)
        captions = webvtt.from_string((out / f"{name}.vtt").read_text(encoding="utf-8"))
        assert len(captions) == len(cues)
        bilingual = list(srt.parse((out / f"{name}.en.srt").read_text(encoding="utf-8")))
        # Original line over the translated one: two lines per cue.
        assert bilingual and all(len(c.content.splitlines()) >= 2 for c in bilingual)
        assert len(webvtt.from_string((out / f"{name}.en.vtt").read_text(encoding="utf-8"))) == len(bilingual)


def test_a_file_that_is_not_media_is_refused_before_anything_streams(tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are meeting notes, not a recording\n", encoding="utf-8")
    process = CliProcess("stream", str(sample("hello_en.wav").path), str(notes), "--out", str(tmp_path / "o"))
    code = process.finish(timeout=60)
    assert code == 2, process.stderr
    assert process.stdout == ""  # no emulator started, nothing streamed
    assert f"bucketscribe: error: {notes}: is not audio or video" in process.stderr
    assert not (tmp_path / "o").exists()


def test_ctrl_c_while_streaming_stops_within_a_second_or_two(tmp_path: Path) -> None:
    long_speech = tmp_path / "long.wav"
    with wave.open(str(sample("hello_en.wav").path), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    with wave.open(str(long_speech), "wb") as target:
        target.setparams(params)
        target.writeframes(frames * 40)  # minutes of speech: far more than the test waits for
    env = {"BUCKETSCRIBE_DASHSCOPE_API_KEY": ""}
    process = CliProcess("stream", str(long_speech), "--out", str(tmp_path / "o"), env=env)
    try:
        process.wait_for(r"long\.wav\s+streaming", stream="stdout", timeout=90)
        process.interrupt()
        code = process.finish(timeout=5)
    finally:
        process.kill()
    assert code == 130, process.stderr
    assert "Traceback" not in process.stderr and "Logging error" not in process.stderr
    assert "Interrupted: the files shown as done have their outputs in" in process.stderr

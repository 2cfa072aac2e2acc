"""`bucketscribe stream` as a user runs it: a subprocess, the local DashScope emulator, Whisper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import srt
import webvtt

from bucketscribe.local.scoring import word_error_rate
from bucketscribe.model import Transcript
from bucketscribe.samples import sample

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(120)]

SAMPLES = ("hello_en.wav", "weather_en.ogg")


def test_stream_transcribes_and_translates_many_files_and_names_the_bad_one(tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("these are meeting notes, not a recording\n", encoding="utf-8")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BUCKETSCRIBE_DASHSCOPE_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bucketscribe.cli",
            "stream",
            *(str(sample(name).path) for name in SAMPLES),
            str(notes),
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
    assert result.returncode == 1, log
    assert result.stdout.startswith(
        "No BUCKETSCRIBE_DASHSCOPE_API_KEY set: streaming to a local DashScope emulator"
    )
    assert any(
        "notes.txt" in line and "failed: not an audio or video file" in line for line in log.splitlines()
    )
    assert not list(out.glob("notes.txt*"))

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

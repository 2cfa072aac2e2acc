"""`bucketscribe demo` — what `make demo` runs — as a user runs it, with the real Whisper engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bucketscribe_local.samples import bundled_samples
from bucketscribe_local.scoring import word_error_rate

from bucketscribe.domain.transcript import Transcript

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_demo_transcribes_every_sample_close_to_its_script(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", "demo", "--out", str(out), "--timeout", "300"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for sample in bundled_samples():
        folder = out / "calls" if sample.channel_texts else out
        transcript = Transcript.model_validate_json((folder / f"{sample.name}.json").read_text())
        error = word_error_rate(sample.text, transcript.text)
        assert error <= 0.3, f"{sample.name}: WER {error:.2f}: {transcript.text!r}"
        assert f"=== {sample.name}" in result.stdout
        for suffix in ("txt", "srt", "vtt", "sis.json"):
            assert (folder / f"{sample.name}.{suffix}").stat().st_size > 0
    call = Transcript.model_validate_json((out / "calls" / "call_stereo.wav.json").read_text())
    assert {s.speaker for s in call.segments} == {"Agent", "Customer"}
    assert "word error rate" in result.stdout
    assert json.loads((out / "demo_video.mp4.sis.json").read_text())["status"] == "FINISHED"

"""`bucketscribe stream` as a user runs it: a subprocess, the local DashScope emulator, Whisper (or the
instant engine where recognition quality is not the point)."""

from __future__ import annotations

import json
import wave
from pathlib import Path

import pytest
import srt
import webvtt
from bucketscribe_local.samples import sample
from bucketscribe_local.scoring import word_error_rate

from bucketscribe.domain.transcript import Transcript
from tests.cli_process import CliProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

SAMPLES = ("hello_en.wav", "weather_en.ogg")
LOCAL = {"BUCKETSCRIBE_DASHSCOPE_API_KEY": ""}


@pytest.mark.slow
def test_stream_shows_sentences_as_they_come_and_writes_transcripts_and_translations(tmp_path: Path) -> None:
    out = tmp_path / "out"
    process = CliProcess(
        "stream",
        *(str(sample(name).path) for name in SAMPLES),
        "--translate",
        "en",
        "--out",
        str(out),
        env=LOCAL,
    )
    code = process.finish(timeout=100)
    log = process.stdout + process.stderr
    assert code == 0, log
    assert process.stderr.startswith(
        "No BUCKETSCRIBE_DASHSCOPE_API_KEY set: streaming to a local DashScope emulator"
    )
    # Piped, stdout holds only what was heard (and the summary); progress is on stderr.
    assert "queued" not in process.stdout and "queued" in process.stderr

    lines = process.stdout.splitlines()
    for name in SAMPLES:
        said = [line for line in lines if line.startswith(f"[{name}] Transcript ==> ")]
        translated = [line for line in lines if line.startswith(f"[{name}] Translate ==> ")]
        assert said and len(translated) == len(said), log
        (metric,) = [line for line in lines if line.startswith(f"[{name}] Metric ==> request ")]
        assert "first package " in metric and "last package " in metric and "real-time factor" in metric
        # The summary table has the file's row, done.
        assert any(line.startswith(name) and line.endswith("done") for line in lines), log

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
    assert "2 of 2 files done" in process.stdout


def test_json_gives_one_event_per_line_for_every_step_of_every_file(tmp_path: Path) -> None:
    call = sample("call_stereo.wav").path
    process = CliProcess(
        "stream",
        str(call),
        "--channels",
        "split",
        "--instant",
        "--json",
        "--out",
        str(tmp_path / "o"),
        env=LOCAL,
    )
    code = process.finish(timeout=60)
    assert code == 0, process.stderr
    events = [json.loads(line) for line in process.stdout.splitlines()]
    kinds = {e["event"] for e in events}
    assert {"file", "progress", "sentence", "metrics", "summary"} <= kinds
    assert {e["speaker"] for e in events if e["event"] == "sentence"} == {"Agent", "Customer"}
    assert [e["state"] for e in events if e["event"] == "file"][-1] == "done"
    assert events[-1]["event"] == "summary" and events[-1]["exit_code"] == 0
    assert "Agent:" in (tmp_path / "o" / "call_stereo.wav.txt").read_text(encoding="utf-8")


def test_an_unsupported_source_language_is_refused_before_anything_streams(tmp_path: Path) -> None:
    process = CliProcess(
        "stream", str(sample("hello_en.wav").path), "--source-language", "xx", "--out", str(tmp_path / "o")
    )
    code = process.finish(timeout=60)
    assert code == 2, process.stderr
    assert process.stdout == ""
    assert (
        "bucketscribe: error: --source-language xx: gummy-realtime-v1 does not recognise 'xx'"
        in process.stderr
    )
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "o").exists()


def test_a_file_that_is_not_media_is_refused_before_anything_streams(tmp_path: Path) -> None:
    notes = tmp_path / "notes.wav"
    notes.write_text("these are meeting notes, not a recording\n", encoding="utf-8")
    process = CliProcess("stream", str(sample("hello_en.wav").path), str(notes), "--out", str(tmp_path / "o"))
    code = process.finish(timeout=60)
    assert code == 2, process.stderr
    assert process.stdout == ""  # no emulator started, nothing streamed
    assert f"bucketscribe: error: {notes}: is not audio or video" in process.stderr
    assert not (tmp_path / "o").exists()


def test_ctrl_c_while_streaming_stops_at_once_says_what_finished_and_exits_130(tmp_path: Path) -> None:
    long_speech = tmp_path / "long.wav"
    with wave.open(str(sample("hello_en.wav").path), "rb") as source:
        params, frames = source.getparams(), source.readframes(source.getnframes())
    with wave.open(str(long_speech), "wb") as target:
        target.setparams(params)
        target.writeframes(frames * 40)  # minutes of speech, sent at 1x: far more than the test waits for
    short = sample("report_en.mp3").path
    process = CliProcess(
        "stream",
        str(short),
        str(long_speech),
        "--instant",
        "--pace",
        "realtime",
        "--out",
        str(tmp_path / "o"),
        env=LOCAL,
    )
    try:
        process.wait_for(r"report_en\.mp3\s+done", stream="stderr", timeout=90)
        process.interrupt()
        code = process.finish(timeout=5)
    finally:
        process.kill()
    assert code == 130, process.stderr
    assert "Traceback" not in process.stderr and "Logging error" not in process.stderr
    assert "1 of 2 files done." in process.stderr
    assert f"Their outputs are in {tmp_path / 'o'}/: report_en.mp3" in process.stderr
    assert "Not finished (nothing written): long.wav" in process.stderr
    assert (tmp_path / "o" / "report_en.mp3.txt").exists() and not (tmp_path / "o" / "long.wav.txt").exists()

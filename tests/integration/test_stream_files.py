"""``bucketscribe stream``'s engine (local/streaming.py) over the real SDK and the emulator's WebSocket.

Files are level recordings (tests/level_audio.py): each one's sentences say which audio the
engine heard, so results mixed between files would show. Events are read as ``--json`` prints them.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.inputs import LocalInput, check_inputs
from bucketscribe_local.streaming import Endpoint, StreamConsole, StreamSettings, stream_files

from bucketscribe.cli.progress import Stage
from bucketscribe.domain.transcript import Transcript
from bucketscribe.providers.dashscope.options import RealtimeOptions
from tests.level_audio import LevelEngine, level_wav
from tests.profiles import profile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]

KEY = "sk-stream-files"
POISON = 9


@pytest.fixture(scope="module")
def endpoint() -> Iterator[Endpoint]:
    engine = LevelEngine(poison=POISON)
    with DashScopeEmulator(api_keys=[KEY], engine=engine, interim_interval_s=0.5) as emulator:
        yield Endpoint(api_key=KEY, websocket_url=emulator.ws_url, description="test emulator")


def inputs(*paths: Path) -> list[LocalInput]:
    usable, refused = check_inputs([(path, profile()) for path in paths])
    assert not refused, refused
    return usable


def run(
    endpoint: Endpoint, files: list[LocalInput], out: Path, options: RealtimeOptions
) -> tuple[Any, list[dict[str, Any]]]:
    printed = io.StringIO()
    console = StreamConsole("json", printed, io.StringIO())
    result = stream_files(
        files, endpoint, StreamSettings(options=options, out_dir=out, concurrency=4), console
    )
    console.summary(result, out, options.translate)
    return result, [json.loads(line) for line in printed.getvalue().splitlines()]


def test_files_streamed_at_once_keep_their_own_results_and_a_failed_task_fails_only_its_file(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    levels = {"two.wav": [2, 0, 0, 3], "four.wav": [4, 0, 0, 5], "six.wav": [6, 0, 0, 7]}
    paths = [level_wav(tmp_path / name, lv) for name, lv in levels.items()]
    # Its first utterance is recognised, then the service fails the task on the second.
    poisoned = level_wav(tmp_path / "bad.wav", [1, 0, 0, POISON])

    result, events = run(
        endpoint, inputs(*paths, poisoned), tmp_path / "out", RealtimeOptions(translate="en")
    )

    assert result.exit_code == 1
    by_file = {f.label: f for f in result.files}
    assert by_file["bad.wav"].progress.stage is Stage.FAILED
    assert by_file["bad.wav"].progress.error_code == "InternalError"
    assert not list((tmp_path / "out").glob("bad.wav.*"))
    for name, (first, _, _, second) in levels.items():
        assert by_file[name].progress.stage is Stage.DONE
        sentences = [e for e in events if e["event"] == "sentence" and e["file"] == name]
        assert [(e["text"], e["translation"]) for e in sentences] == [
            (f"级别{first}。", f"level {first}."),
            (f"级别{second}。", f"level {second}."),
        ]
        interims = {e["text"] for e in events if e["event"] == "interim" and e["file"] == name}
        assert interims <= {f"级别{first}。", f"级别{second}。"}
        transcript = Transcript.model_validate_json((tmp_path / "out" / f"{name}.json").read_text())
        assert transcript.text == f"级别{first}。 级别{second}。"
        assert (tmp_path / "out" / f"{name}.en.srt").read_text().count("level") == 2
        (metrics,) = [e for e in events if e["event"] == "metrics" and e["file"] == name]
        assert metrics["first_package_ms"] is not None and len(metrics["request_id"]) == 32
    # The failed file's one recognised sentence was shown before its task failed.
    bad = [e["text"] for e in events if e["event"] == "sentence" and e["file"] == "bad.wav"]
    assert bad == ["级别1。"]
    (summary,) = [e for e in events if e["event"] == "summary"]
    assert (summary["done"], summary["failed"], summary["exit_code"]) == (3, 1, 1)
    assert {f["file"]: f["error_code"] for f in summary["files"]}["bad.wav"] == "InternalError"


def test_a_split_call_gives_two_labelled_speakers_merged_by_time(endpoint: Endpoint, tmp_path: Path) -> None:
    call = level_wav(tmp_path / "call.wav", [3, 0, 0, 0, 0, 5], [0, 0, 0, 7, 0, 0])

    result, events = run(endpoint, inputs(call), tmp_path / "out", RealtimeOptions(channels="split"))

    assert result.exit_code == 0
    said = [(e["speaker"], e["text"]) for e in events if e["event"] == "sentence"]
    assert sorted(said) == [("Agent", "级别3。"), ("Agent", "级别5。"), ("Customer", "级别7。")]
    assert sorted(e["speaker"] for e in events if e["event"] == "metrics") == ["Agent", "Customer"]
    assert not [e for e in events if e["event"] == "warning"]
    text = (tmp_path / "out" / "call.wav.txt").read_text()
    assert [line for line in text.splitlines() if line] == [
        "Agent: 级别3。",
        "Customer: 级别7。",
        "Agent: 级别5。",
    ]
    transcript = Transcript.model_validate_json((tmp_path / "out" / "call.wav.json").read_text())
    assert transcript.speakers == ["Agent", "Customer"]


def test_a_stereo_file_not_split_is_downmixed_with_a_warning(endpoint: Endpoint, tmp_path: Path) -> None:
    call = level_wav(tmp_path / "call.wav", [3, 0, 0], [0, 0, 0])

    result, events = run(endpoint, inputs(call), tmp_path / "out", RealtimeOptions())

    assert result.exit_code == 0
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert warning["file"] == "call.wav" and "2 channels mixed into one" in warning["message"]
    assert [e["text"] for e in events if e["event"] == "sentence"] == ["级别2。"]  # (3 + 0) / 2, rounded


def test_a_split_of_a_four_channel_file_streams_two_and_warns_once_of_the_rest(
    endpoint: Endpoint, tmp_path: Path
) -> None:
    call = level_wav(tmp_path / "call.wav", [3, 0, 0], [0, 0, 7], [6, 6, 6], [8, 8, 8])

    result, events = run(endpoint, inputs(call), tmp_path / "out", RealtimeOptions(channels="split"))

    assert result.exit_code == 0
    (warning,) = [e for e in events if e["event"] == "warning"]
    assert "4 channels" in warning["message"] and "channels 3-4 are not transcribed" in warning["message"]
    # Two paid streams, not four: the third and fourth channels' levels are never heard.
    assert sorted(e["speaker"] for e in events if e["event"] == "metrics") == ["Agent", "Customer"]
    said = sorted((e["speaker"], e["text"]) for e in events if e["event"] == "sentence")
    assert said == [("Agent", "级别3。"), ("Customer", "级别7。")]
    transcript = Transcript.model_validate_json((tmp_path / "out" / "call.wav.json").read_text())
    assert [w.code for w in transcript.warnings] == ["CHANNELS_NOT_TRANSCRIBED"]
    assert transcript.speakers == ["Agent", "Customer"]

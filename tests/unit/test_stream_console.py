"""What ``bucketscribe stream`` shows: sentences as they come, interims on a terminal, metrics, a summary."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from pathlib import Path

import pytest
from bucketscribe_local.inputs import LocalInput
from bucketscribe_local.streaming import StreamConsole, StreamedFile, StreamRun, summary_table

from bucketscribe.cli.progress import FileProgress, Stage
from bucketscribe.domain.job import StreamMetrics
from bucketscribe.domain.transcript import Transcript
from bucketscribe.ports.provider import StreamedRecording
from bucketscribe.providers.dashscope.realtime import Sentence
from tests.profiles import profile

pytestmark = pytest.mark.unit


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def streamed(name: str) -> StreamedFile:
    item = LocalInput(path=Path(name), label=name, profile=profile(), size=1, duration_ms=4000, channels=1)
    progress = FileProgress(
        label=name, path=Path(name), audio_ms=4000, stage=Stage.TRANSCRIBING, audio_ms_done=0
    )
    return StreamedFile(input=item, progress=progress, output_name=name)


def recording(first: int | None = 410, last: int | None = 1170) -> StreamedRecording:
    return StreamedRecording(
        transcript=Transcript(provider="dashscope"),
        task_id="f" * 32,
        metrics=StreamMetrics(first_package_ms=first, last_package_ms=last, audio_ms=4000, elapsed_ms=1000),
    )


INTERIM = Sentence(sentence_id=0, begin_ms=0, end_ms=800, text="hello and", final=False)
FINAL = Sentence(
    sentence_id=0, begin_ms=0, end_ms=1500, text="Hello and welcome.", final=True, translation="你好，欢迎。"
)


def test_plain_lines_show_each_final_sentence_and_its_translation_prefixed_by_the_file_never_interims() -> (
    None
):
    out = io.StringIO()
    console = StreamConsole.for_terminal(json_events=False, quiet=False, out=out)
    a = streamed("a.wav")
    console.start([a])
    console.sentence(a, INTERIM)
    console.sentence(a, FINAL)
    console.metrics(a, recording(), None)
    lines = out.getvalue().splitlines()
    assert console.mode == "lines"
    assert "hello and" not in out.getvalue()
    assert "[a.wav] Transcript ==> Hello and welcome." in lines
    assert "[a.wav] Translate ==> 你好，欢迎。" in lines
    assert (
        f"[a.wav] Metric ==> request {'f' * 32} · first package 410 ms · last package 1170 ms"
        " · real-time factor 0.25"
    ) in lines
    assert lines.index("[a.wav] Transcript ==> Hello and welcome.") < lines.index(
        "[a.wav] Translate ==> 你好，欢迎。"
    )


def test_on_a_terminal_the_interim_updates_in_place_and_the_final_stays_above_the_board() -> None:
    out = Terminal()
    console = StreamConsole.for_terminal(json_events=False, quiet=False, out=out)
    a, b = streamed("a.wav"), streamed("b.wav")
    console.start([a, b])
    console.sentence(a, INTERIM)
    assert console.mode == "board"
    assert "a.wav  (0 of 4 s · hello and)" in out.getvalue()
    console.sentence(a, FINAL)
    written = out.getvalue()
    final_at = written.index("[a.wav] Transcript ==> Hello and welcome.")
    # The board is erased (cursor up, clear) before the sentence and redrawn after it, without the interim.
    assert "\x1b[J" in written[:final_at]
    assert "a.wav" in written[final_at + 40 :] and "hello and)" not in written[final_at:]
    assert a.progress.live_text is None


def test_a_translation_sent_on_its_own_adds_its_line_without_repeating_the_sentence() -> None:
    out = io.StringIO()
    console = StreamConsole("lines", out)
    a = streamed("a.wav")
    console.start([a])
    alone = replace(FINAL, translation=None)
    console.sentence(a, alone)
    console.sentence(a, replace(FINAL, translation_only=True))
    said = [line for line in out.getvalue().splitlines() if "==>" in line]
    assert said == ["[a.wav] Transcript ==> Hello and welcome.", "[a.wav] Translate ==> 你好，欢迎。"]


def test_a_file_counts_each_final_sentence_once_whatever_comes_after_it() -> None:
    a = streamed("a.wav")
    heard = [INTERIM, replace(FINAL, translation=None), replace(FINAL, translation_only=True)]
    assert [a.record(sentence) for sentence in heard] == [False, True, False]
    assert (a.sentences, a.progress.audio_ms_done) == (1, 1500)


def test_in_json_a_translation_sent_on_its_own_is_a_translation_event_not_a_second_sentence() -> None:
    out = io.StringIO()
    console = StreamConsole("json", out)
    a = streamed("a.wav")
    console.start([a])
    console.sentence(a, replace(FINAL, translation=None))
    console.sentence(a, replace(FINAL, translation_only=True))
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    said = [(e["event"], e["sentence_id"], e["translation"]) for e in events if "sentence_id" in e]
    assert said == [("sentence", 0, None), ("translation", 0, "你好，欢迎。")]


def test_speakers_of_a_split_call_are_named_in_each_line() -> None:
    out = io.StringIO()
    console = StreamConsole("lines", out)
    a = streamed("call.wav")
    console.start([a])
    console.sentence(
        a, Sentence(sentence_id=0, begin_ms=0, end_ms=900, text="Hi.", final=True, speaker="Customer")
    )
    console.metrics(a, recording(first=None, last=None), "Customer")
    assert "[call.wav] Customer: Transcript ==> Hi." in out.getvalue()
    assert "[call.wav] Customer: Metric ==> request" in out.getvalue()
    assert "first package - · last package -" in out.getvalue()


def test_json_gives_one_object_per_event_interims_included() -> None:
    out = io.StringIO()
    console = StreamConsole.for_terminal(json_events=True, quiet=False, out=out)
    a = streamed("a.wav")
    console.start([a])
    console.sentence(a, INTERIM)
    console.sentence(a, FINAL)
    console.metrics(a, recording(), None)
    events = [json.loads(line) for line in out.getvalue().splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[-3:] == ["interim", "sentence", "metrics"]
    assert events[-2]["text"] == "Hello and welcome." and events[-2]["translation"] == "你好，欢迎。"
    assert events[-1]["realtime_factor"] == 0.25 and events[-1]["first_package_ms"] == 410


def test_quiet_shows_nothing_but_the_errors() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = StreamConsole("quiet", out, err)
    a, b = streamed("a.wav"), streamed("b.wav")
    console.start([a, b])
    console.say("Streaming to somewhere")
    console.sentence(a, FINAL)
    a.progress.stage = Stage.DONE
    b.progress.stage, b.progress.error_code, b.progress.error = Stage.FAILED, "InternalError", "it broke"
    console.summary(StreamRun(files=[a, b], batch=console.batch), Path("out"), None)
    assert out.getvalue() == ""
    assert err.getvalue() == "bucketscribe: failed: b.wav: InternalError: it broke\n"


def test_the_summary_table_has_a_row_per_file_with_its_delays_or_why_it_failed() -> None:
    a, b = streamed("a.wav"), streamed("b.wav")
    a.result, a.sentences, a.progress.stage = recording(), 3, Stage.DONE
    b.progress.stage, b.progress.error_code, b.progress.error = Stage.FAILED, "InvalidParameter", "bad"
    header, first, second = summary_table([a, b])
    assert header.split() == [
        "file",
        "audio",
        "sentences",
        "first",
        "package",
        "last",
        "package",
        "RTF",
        "result",
    ]
    assert first.split() == ["a.wav", "4.0", "s", "3", "410", "ms", "1170", "ms", "0.25", "done"]
    assert second.split() == ["b.wav", "-", "-", "-", "-", "-", "failed:", "InvalidParameter:", "bad"]


def test_in_plain_lines_only_what_was_heard_goes_to_stdout_progress_and_warnings_to_stderr() -> None:
    out, err = io.StringIO(), io.StringIO()
    console = StreamConsole("lines", out, err)
    a = streamed("a.wav")
    console.start([a])
    console.say("No BUCKETSCRIBE_DASHSCOPE_API_KEY set: streaming to a local DashScope emulator")
    console.warn(a, "2 channels mixed into one stream")
    console.sentence(a, replace(FINAL, translation=None))
    console.metrics(a, recording(first=410, last=31), None)
    assert [line.split(" ==> ")[0] for line in out.getvalue().splitlines()] == [
        "[a.wav] Transcript",
        "[a.wav] Metric",
    ]
    assert "a.wav" in err.getvalue() and "local DashScope emulator" in err.getvalue()
    assert "[a.wav] warning: 2 channels mixed" in err.getvalue()

"""The `bucketscribe` command as a user types it (main() with argv; output read from stdout/stderr)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import srt

from bucketscribe.cli import main
from bucketscribe.model import Transcript
from tests.unit.test_dashscope_units import RESULT as DASHSCOPE_RESULT
from tests.unit.test_sis_result import FINISHED as SIS_RESULT

pytestmark = pytest.mark.unit


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("provider", "raw", "text"),
    [("sis", SIS_RESULT, "我想查询账单。"), ("dashscope", DASHSCOPE_RESULT, "Second one.")],
)
def test_normalize_turns_a_provider_result_into_canonical_json(tmp_path, capsys, provider, raw, text):
    path = tmp_path / "result.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    code, out, err = run(capsys, "normalize", "--provider", provider, "--language", "zh", str(path))
    assert (code, err) == (0, "")
    transcript = Transcript.model_validate_json(out)
    assert transcript.provider == provider and transcript.language == "zh"
    assert text in [s.text for s in transcript.segments]


def test_render_reads_canonical_json_and_writes_the_format(tmp_path, capsys):
    source = tmp_path / "result.json"
    source.write_text(json.dumps(SIS_RESULT), encoding="utf-8")
    _, canonical, _ = run(capsys, "normalize", "--provider", "sis", str(source))
    transcript = tmp_path / "t.json"
    transcript.write_text(canonical, encoding="utf-8")
    code, out, _ = run(capsys, "render", "--format", "srt", str(transcript))
    assert code == 0 and [c.index for c in srt.parse(out)] == [1, 2]
    assert "[Agent]" in out
    code, out, _ = run(capsys, "render", "--format", "srt", "--no-speakers", str(transcript))
    assert code == 0 and "[Agent]" not in out
    code, out, _ = run(capsys, "render", "--format", "vtt", str(transcript))
    assert code == 0 and out.startswith("WEBVTT")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON (line 1, column 2"),
        (json.dumps({"hello": "world"}), "not a SIS result"),
        (b"RIFF\x00\x00\xff\xfeWAVE", "is not UTF-8 text"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_exit_code_2(tmp_path, capsys, content, problem):
    path = tmp_path / "input.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "normalize", "--provider", "sis", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"bucketscribe: error: {path}: ")
    assert problem in err


def test_a_directory_or_a_non_transcript_is_refused_with_the_reason(tmp_path, capsys):
    code, _, err = run(capsys, "render", "--format", "txt", str(tmp_path))
    assert code == 2 and "is a directory" in err
    other = tmp_path / "x.json"
    other.write_text(json.dumps({"segments": "nope"}), encoding="utf-8")
    code, _, err = run(capsys, "render", "--format", "txt", str(other))
    assert code == 2 and "is not a bucketscribe transcript" in err and str(other) in err


def test_unknown_format_is_an_argparse_error(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "render", "--format", "docx", "x.json")
    assert code == 2 and "invalid choice" in err


def test_job_id_matches_the_pipelines_job_id(capsys):
    from bucketscribe.model import ObjectRef

    code, out, _ = run(capsys, "job-id", "recordings", "incoming/a b+c/ünï.wav", "--etag", '"abc"')
    assert code == 0
    assert out.strip() == ObjectRef(bucket="recordings", key="incoming/a b+c/ünï.wav", etag="abc").job_id()
    code, _, err = run(capsys, "job-id", "recordings", "incoming/x.wav")
    assert code == 2 and "--etag" in err

"""The `bucketscribe` command as a user types it (main() with argv; output read from stdout/stderr)."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

import pytest
import srt

from bucketscribe.cli.arguments import output_formats
from bucketscribe.cli.main import build_parser, main
from bucketscribe.domain.transcript import Transcript
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
def test_normalize_turns_a_provider_result_into_canonical_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], provider: str, raw: dict[str, Any], text: str
) -> None:
    path = tmp_path / "result.json"
    path.write_text(json.dumps(raw), encoding="utf-8")
    code, out, err = run(capsys, "normalize", "--provider", provider, "--language", "zh", str(path))
    assert (code, err) == (0, "")
    transcript = Transcript.model_validate_json(out)
    assert transcript.provider == provider and transcript.language == "zh"
    assert text in [s.text for s in transcript.segments]


def canonical_transcript(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    """SIS_RESULT normalised by the CLI, as a canonical transcript file."""
    source = tmp_path / "result.json"
    source.write_text(json.dumps(SIS_RESULT), encoding="utf-8")
    _, canonical, _ = run(capsys, "normalize", "--provider", "sis", str(source))
    transcript = tmp_path / "t.json"
    transcript.write_text(canonical, encoding="utf-8")
    return transcript


def test_render_reads_canonical_json_and_writes_the_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = canonical_transcript(tmp_path, capsys)
    code, out, _ = run(capsys, "render", "--format", "srt", str(transcript))
    assert code == 0 and [c.index for c in srt.parse(out)] == [1, 2]
    assert "[Agent]" in out
    code, out, _ = run(capsys, "render", "--format", "srt", "--no-speakers", str(transcript))
    assert code == 0 and "[Agent]" not in out
    code, out, _ = run(capsys, "render", "--format", "vtt", str(transcript))
    assert code == 0 and out.startswith("WEBVTT")


def test_render_writes_every_format_from_one_read_of_the_transcript(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    transcript = canonical_transcript(tmp_path, capsys)
    code, _, err = run(capsys, "render", "--format", "srt,vtt", str(transcript))
    assert code == 2
    assert err == "bucketscribe: error: --format: 2 formats need --out PREFIX (stdout holds one)\n"
    prefix = tmp_path / "out" / "talk"
    prefix.parent.mkdir()
    code, out, _ = run(capsys, "render", "--format", "all", "--out", str(prefix), str(transcript))
    assert code == 0
    assert out.splitlines() == [f"{prefix}.{fmt}" for fmt in ("json", "txt", "srt", "vtt")]
    _, one_srt, _ = run(capsys, "render", "--format", "srt", str(transcript))
    assert (tmp_path / "out" / "talk.srt").read_text(encoding="utf-8") == one_srt
    assert Transcript.model_validate_json((tmp_path / "out" / "talk.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such file"),
        ("{not json", "is not valid JSON (line 1, column 2"),
        (json.dumps({"hello": "world"}), "not a SIS result"),
        (b"RIFF\x00\x00\xff\xfeWAVE", "is not UTF-8 text"),
    ],
)
def test_bad_input_is_one_line_naming_the_file_and_exit_code_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str | bytes | None, problem: str
) -> None:
    path = tmp_path / "input.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    code, out, err = run(capsys, "normalize", "--provider", "sis", str(path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"bucketscribe: error: {path}: ")
    assert problem in err


def test_a_directory_or_a_non_transcript_is_refused_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "render", "--format", "txt", str(tmp_path))
    assert code == 2 and "is a directory" in err
    other = tmp_path / "x.json"
    other.write_text(json.dumps({"segments": "nope"}), encoding="utf-8")
    code, _, err = run(capsys, "render", "--format", "txt", str(other))
    assert code == 2 and "is not a bucketscribe transcript" in err and str(other) in err


def test_unknown_format_is_an_argparse_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "render", "--format", "docx", "x.json")
    assert code == 2 and "'docx': choose from json, txt, srt, vtt, all" in err


def test_job_id_matches_the_pipelines_job_id(capsys: pytest.CaptureFixture[str]) -> None:
    from bucketscribe.domain.upload import ObjectRef

    code, out, _ = run(capsys, "job-id", "recordings", "incoming/a b+c/ünï.wav", "--etag", '"abc"')
    assert code == 0
    assert out.strip() == ObjectRef(bucket="recordings", key="incoming/a b+c/ünï.wav", etag="abc").job_id()
    code, _, err = run(capsys, "job-id", "recordings", "incoming/x.wav")
    assert code == 2 and "--etag" in err


# ----- help, version, usage ------------------------------------------------------------------------


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(commands.choices)


def test_every_command_has_a_description_and_every_optional_option_shows_its_default() -> None:
    commands = _subparsers()
    assert {"transcribe", "up", "stream", "demo", "normalize", "render", "job-id"} <= set(commands)
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 40, name
        help_text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.default is argparse.SUPPRESS or action.required:
                continue
            # The help line of this option, up to the next option (argparse wraps long ones).
            start = help_text.index("\n  " + ", ".join(action.option_strings))
            following = re.search(r"\n  -", help_text[start + 1 :])
            end = start + 1 + following.start() if following else len(help_text)
            assert "default" in help_text[start:end] or "required" in help_text[start:end], (
                f"{name} {action.option_strings}: {help_text[start:end]}"
            )
        for action in parser._actions:
            if not action.option_strings:
                assert action.help, f"{name} {action.dest} has no help"


def test_defaults_are_shown_as_values(capsys: pytest.CaptureFixture[str]) -> None:
    help_text = _subparsers()["transcribe"].format_help()
    assert "(default: 900.0)" in help_text and "(default: ./transcripts" in help_text
    assert "(default: off)" in help_text  # a flag
    assert "examples:" in help_text
    assert "(default: 4566)" in _subparsers()["up"].format_help()


def test_up_json_help_names_the_emulator_credentials_it_prints() -> None:
    help_text = " ".join(_subparsers()["up"].format_help().split())  # argparse wraps lines
    for name in ("sis_ak", "sis_sk", "sis_project_id", "dashscope_api_key"):
        assert name in help_text, name


def test_version_comes_from_the_package_metadata(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"bucketscribe {version('bucketscribe')}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["transcribe", "a.wav", "--timeout", "0"], "0 is not a positive number of seconds"),
        (["transcribe", "a.wav", "--timeout", "-1"], "-1 is not a positive number of seconds"),
        (["transcribe", "a.wav", "--timeout", "soon"], "'soon' is not a number of seconds"),
        (["transcribe", "a.wav", "--output-format", "txt,docx"], "choose from json, txt, srt, vtt, all"),
        (["demo", "--timeout", "0"], "0 is not a positive number of seconds"),
        (["stream", "a.wav", "--concurrency", "0"], "0 is not 1 or more"),
        (["up", "--port", "70000"], "70000 is not a port number"),
        (["transcribe"], "the following arguments are required: FILE"),
    ],
)
def test_bad_usage_is_exit_2_with_the_reason(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert message in err


def test_output_formats_parse_a_comma_list() -> None:
    assert output_formats("txt, srt") == ["txt", "srt"]
    assert output_formats("all") == ["all"]
    with pytest.raises(argparse.ArgumentTypeError):
        output_formats(",")


def test_a_translation_the_local_emulator_cannot_make_is_refused_before_streaming(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bucketscribe_local.samples import sample

    monkeypatch.delenv("BUCKETSCRIBE_DASHSCOPE_API_KEY", raising=False)
    code, out, err = run(capsys, "stream", str(sample("hello_en.wav").path), "--translate", "fr")
    assert code == 2 and out == ""
    assert "--translate fr: the local emulator (offline Whisper) translates only into en" in err

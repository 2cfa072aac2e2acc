"""`bucketscribe transcribe` and `bucketscribe up` as a user runs them: subprocesses, instant engine.

Every exit code is provoked for real: 0 (all done), 1 (a file failed or timed out: emulator faults
through BUCKETSCRIBE_LOCAL_FAULTS), 2 (input refused before anything starts, a busy port),
130 (Ctrl-C once the command has started work). No sleeps: each wait is for a line or a state,
with a deadline.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import srt

from tests.audio import tone_wav
from tests.cli_process import CliProcess

pytestmark = pytest.mark.e2e

# Jobs that stay at the speech service until the test is done with them.
HELD = {"BUCKETSCRIBE_LOCAL_FAULTS": json.dumps({"processing_delay_s": 600})}
FAILING = {"BUCKETSCRIBE_LOCAL_FAULTS": json.dumps({"job_failure_rate": 1.0})}


def transcribe(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> tuple[int, str, str]:
    process = CliProcess("transcribe", *args, env=env, cwd=str(cwd) if cwd else None)
    code = process.finish(timeout=120)
    return code, process.stdout, process.stderr


def recording(folder: Path, name: str, seconds: float = 1.0, channels: int = 1) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(tone_wav(seconds, channels=channels))
    return path


# ----- exit 0 --------------------------------------------------------------------------------------


def test_one_file_without_out_prints_its_transcript_and_writes_every_format(tmp_path: Path) -> None:
    recording(tmp_path, "meeting notes.wav")
    code, out, err = transcribe("meeting notes.wav", "--instant", cwd=tmp_path)
    assert code == 0, err
    written = tmp_path / "transcripts" / "meeting notes.wav.txt"
    # Like whisper: the text on stdout, and the files written; progress and messages on stderr.
    assert out.strip() == written.read_text(encoding="utf-8").strip()
    assert "fixed transcript" in out
    for suffix in ("json", "srt", "vtt", "sis.json"):
        assert (tmp_path / "transcripts" / f"meeting notes.wav.{suffix}").stat().st_size > 0
    assert "Outputs (json, txt, srt, vtt, raw provider result) are in transcripts/:" in err
    assert "meeting notes.wav  →  transcripts/meeting notes.wav.*" in err


@pytest.mark.slow
def test_language_and_model_choose_what_the_offline_engine_runs(tmp_path: Path) -> None:
    from bucketscribe_local.model_store import whisper_model_dir
    from bucketscribe_local.samples import bundled_samples

    (sample,) = [s for s in bundled_samples() if s.name == "hello_en.wav"]
    code, out, err = transcribe(
        str(sample.path), "--language", "en", "--model", str(whisper_model_dir()), "--quiet", cwd=tmp_path
    )
    assert code == 0, err
    assert "hello" in out.lower()
    written = json.loads((tmp_path / "transcripts" / "hello_en.wav.json").read_text(encoding="utf-8"))
    # The transcript names the engine and model folder that really ran, not the SIS property.
    assert written["model"].startswith("faster-whisper ") and whisper_model_dir().name in written["model"]


def test_two_inputs_with_one_name_are_two_files_in_progress_and_outputs(tmp_path: Path) -> None:
    first = recording(tmp_path / "monday", "call.wav")
    second = recording(tmp_path / "tuesday", "call.wav", seconds=2)
    out_dir = tmp_path / "subs"
    code, out, err = transcribe(
        str(first), str(second), "--instant", "--out", str(out_dir), "--output-format", "txt,srt"
    )
    assert code == 0, err
    assert out == ""  # several files (and an explicit --out): nothing but progress, on stderr
    # Plain lines (stderr is not a terminal): each file's stages in order, under its own name.
    for path in (first, second):
        stages = re.findall(rf"{re.escape(str(path))}\s+(\w+)", err)
        assert stages[0] == "uploaded" and stages[-1] == "done", err
        order = ["uploaded", "queued", "submitted", "transcribing", "finishing", "done"]
        assert stages == sorted(stages, key=order.index), err
    assert re.search(r"\[2/2 done · elapsed \d+:\d\d\]", err), err
    assert sorted(p.name for p in out_dir.iterdir() if p.suffix != ".log") == [
        "call-2.wav.srt",
        "call-2.wav.txt",
        "call.wav.srt",
        "call.wav.txt",
    ]
    assert list(srt.parse((out_dir / "call-2.wav.srt").read_text(encoding="utf-8")))
    assert f"{second}  →  {out_dir}/call-2.wav.*" in err


def test_json_events_one_per_line_for_scripts(tmp_path: Path) -> None:
    path = recording(tmp_path, "a.wav")
    code, out, err = transcribe(str(path), "--instant", "--json", "--out", str(tmp_path / "out"))
    assert code == 0, err
    events = [json.loads(line) for line in out.splitlines()]
    files = [e for e in events if e["event"] == "file"]
    assert files[0]["state"] == "uploaded" and files[-1]["state"] == "done"
    assert files[-1]["audio_s"] == 1.0
    progress = [e for e in events if e["event"] == "progress"]
    assert progress[-1] == {**progress[-1], "done": 1, "failed": 0, "total": 1, "eta_s": None}
    summary = events[-1]
    assert summary["event"] == "summary" and summary["exit_code"] == 0
    (only,) = summary["files"]
    assert only["state"] == "done" and len(only["job_id"]) == 32
    assert {Path(p).name for p in only["outputs"]} >= {"a.wav.json", "a.wav.txt", "a.wav.srt", "a.wav.vtt"}
    assert all(Path(p).is_file() for p in only["outputs"])
    assert "Starting the local stack" not in err  # --json: no chatter


# ----- exit 1 --------------------------------------------------------------------------------------


def test_failed_files_get_one_line_each_with_code_and_reason(tmp_path: Path) -> None:
    first, second = recording(tmp_path, "a.wav"), recording(tmp_path, "b.wav")
    code, _, err = transcribe(str(first), str(second), "--instant", "--out", str(tmp_path / "o"), env=FAILING)
    assert code == 1, err
    for path in (first, second):
        (line,) = [x for x in err.splitlines() if x.startswith(f"bucketscribe: failed: {path}: ")]
        assert re.fullmatch(rf"bucketscribe: failed: {re.escape(str(path))}: SIS\.\d+: .+", line), line
    assert "0 of 2 files done, 2 failed" in err


def test_a_file_still_unfinished_at_the_timeout_fails_with_timeout(tmp_path: Path) -> None:
    path = recording(tmp_path, "slow.wav")
    code, _, err = transcribe(
        str(path), "--instant", "--timeout", "2", "--out", str(tmp_path / "o"), env=HELD
    )
    assert code == 1, err
    assert f"bucketscribe: failed: {path}: TIMEOUT: still submitted after --timeout 2 s" in err


# ----- exit 2 --------------------------------------------------------------------------------------


def test_bad_inputs_are_refused_by_content_before_anything_starts(tmp_path: Path) -> None:
    good = recording(tmp_path, "good.wav")
    fake = tmp_path / "fake.wav"
    fake.write_text("not audio at all\n", encoding="utf-8")
    empty = tmp_path / "empty.mp3"
    empty.write_bytes(b"")
    folder = tmp_path / "folder.wav"
    folder.mkdir()
    missing = tmp_path / "missing.wav"
    header_only = tmp_path / "header_only.wav"
    header_only.write_bytes(tone_wav(0))  # a WAV header and not one sample
    out_dir = tmp_path / "out"
    code, out, err = transcribe(
        str(good), str(fake), str(empty), str(folder), str(missing), str(header_only), "--out", str(out_dir)
    )
    assert code == 2, err
    assert out == ""
    problems = {
        fake: "is not audio or video",
        empty: "is empty (0 bytes)",
        folder: "is a directory",
        missing: "no such file",
        header_only: "has no audio samples",
    }
    for path, problem in problems.items():
        (line,) = [x for x in err.splitlines() if x.startswith(f"bucketscribe: error: {path}: ")]
        assert problem in line
    assert str(good) not in err
    assert "Starting the local stack" not in err and not out_dir.exists()  # nothing started


def test_with_json_each_refusal_is_also_an_event(tmp_path: Path) -> None:
    missing = tmp_path / "missing.wav"
    code, out, err = transcribe(str(missing), "--json")
    assert code == 2, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"event": "refused", "path": str(missing), "reason": "no such file"}
    ]


def test_a_mono_file_is_refused_for_the_stereo_calls_profile(tmp_path: Path) -> None:
    mono = recording(tmp_path, "call.wav")
    code, _, err = transcribe(str(mono), "--profile", "calls", "--out", str(tmp_path / "o"))
    assert code == 2, err
    assert f"bucketscribe: error: {mono}: is mono, but profile 'calls' expects stereo audio" in err
    assert "agent on the left channel" in err and "Starting the local stack" not in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--timeout", "0"], "argument --timeout: 0 is not a positive number of seconds"),
        (["--timeout", "-1"], "argument --timeout: -1 is not a positive number of seconds"),
        (["--output-format", "docx"], "argument --output-format: 'docx': choose from"),
        (["--profile", "nope"], "unknown profile 'nope' (known: default, calls, dashscope, live)"),
    ],
)
def test_bad_usage_is_exit_2_with_one_line_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    path = recording(tmp_path, "a.wav")
    code, _, err = transcribe(str(path), "--instant", *args)
    assert code == 2 and message in err, err
    assert "Traceback" not in err


# ----- exit 130 ------------------------------------------------------------------------------------


def test_ctrl_c_stops_at_once_and_says_what_finished(tmp_path: Path) -> None:
    path = recording(tmp_path, "long.wav")
    process = CliProcess("transcribe", str(path), "--instant", "--out", str(tmp_path / "o"), env=HELD)
    try:
        process.wait_for(rf"{re.escape(str(path))}\s+submitted")  # the service has it: work has started
        process.interrupt()
        code = process.finish(timeout=5)
    finally:
        process.kill()
    assert code == 130, process.stderr
    assert "Traceback" not in process.stderr + process.stdout
    assert "Logging error" not in process.stderr
    assert "Interrupted after" in process.stderr and "0 of 1 files done." in process.stderr
    assert f"Not finished: {path} (submitted)" in process.stderr


# ----- up ------------------------------------------------------------------------------------------


def _listening_socket() -> socket.socket:
    busy = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    return busy


def test_up_on_a_busy_port_is_one_line_naming_the_port_and_the_option(tmp_path: Path) -> None:
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        process = CliProcess("up", "--instant", "--port", str(port))
        try:
            code = process.finish(timeout=5)
        finally:
            process.kill()
    assert code == 2, process.stderr
    errors = [line for line in process.stderr.splitlines() if "error" in line]
    assert errors == [
        f"bucketscribe: error: port {port} is in use by another program; "
        "choose another with --port N (0 picks a free one)"
    ]


def _up(*args: str, env: dict[str, str] | None = None) -> tuple[CliProcess, dict[str, Any]]:
    process = CliProcess("up", "--instant", "--port", "0", "--json", *args, env=env)
    line = process.wait_for(r"^\{.*\}$", stream="stdout").group(0)
    return process, json.loads(line)


def _shell(command: str) -> str:
    return subprocess.run(
        ["bash", "-c", command], capture_output=True, text=True, check=True, timeout=30
    ).stdout


def _job_when_final(status_command: str, timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job = json.loads(_shell(status_command))
        if job.get("state") in ("DONE", "FAILED") or time.monotonic() > deadline:
            return job


def test_up_json_describes_everything_and_its_example_works_as_printed(tmp_path: Path) -> None:
    env = {
        "BUCKETSCRIBE_STATUS_API_TOKEN": "token-from-the-environment",
        "BUCKETSCRIBE_PROFILES": json.dumps(
            [{"name": "default", "prefix": ""}, {"name": "media", "prefix": "media/"}]
        ),
    }
    process, details = _up(env=env)
    try:
        assert details["status_token"] == "token-from-the-environment"  # the user's settings are honoured
        assert [p["name"] for p in details["profiles"]] == ["default", "media"]
        assert details["bucket"] == "recordings" and details["input_prefix"] == "incoming/"
        for key in (
            "s3_endpoint",
            "status_api",
            "sis_endpoint",
            "dashscope_endpoint",
            "queue_url",
            "jobs_table",
            "sis_ak",
            "sis_sk",
            "sis_project_id",
            "dashscope_api_key",
        ):
            assert details[key], key
        assert details["state_dir"] is None
        example = details["example"]
        _shell(example["upload"])
        job = _job_when_final(example["status"])
        assert job["state"] == "DONE" and job["key"] == example["key"] and job["id"] == example["job_id"]
        assert "fixed transcript" in _shell(example["transcript"])
        by_key = json.loads(_shell(example["status_by_key"]))  # no ETag needed
        assert by_key["latest"]["id"] == example["job_id"] and by_key["latest"]["state"] == "DONE"
        process.interrupt()
        code = process.finish(timeout=30)
    finally:
        process.kill()
    assert code == 0, process.stderr
    assert process.stdout.count("\n") == 1  # one JSON line; the function logs went to stderr
    assert "Traceback" not in process.stderr


def test_up_says_nothing_is_kept_without_a_state_dir() -> None:
    process = CliProcess("up", "--instant", "--port", "0")
    try:
        process.wait_for(r"Ctrl-C stops", stream="stdout")
        process.interrupt()
        assert process.finish(timeout=30) == 0
    finally:
        process.kill()
    assert "Nothing is kept: the bucket and the job records are gone when up stops" in process.stdout
    for line in (
        "Try it (works as printed",
        "--aws-sigv4",
        "Authorization: Bearer",
        "/jobs?bucket=recordings&key=",
    ):
        assert line in process.stdout


def test_up_state_dir_keeps_the_bucket_and_the_jobs_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state"
    process, details = _up("--state-dir", str(state))
    try:
        example = details["example"]
        _shell(example["upload"])
        assert _job_when_final(example["status"])["state"] == "DONE"
        process.interrupt()
        assert process.finish(timeout=30) == 0
    finally:
        process.kill()
    saved = re.search(r"Saved ([1-9]\d*) objects and 1 job records", process.stderr)
    assert saved, process.stderr

    again, restarted = _up("--state-dir", str(state))
    try:
        assert restarted["restored"] == {"objects": int(saved.group(1)), "jobs": 1, "rerun": 0}
        status = restarted["example"]["status"]  # a new port and token: the same job, kept
        job = json.loads(_shell(status))
        assert job["state"] == "DONE" and job["id"] == details["example"]["job_id"]
        assert "fixed transcript" in _shell(restarted["example"]["transcript"])
        again.interrupt()
        assert again.finish(timeout=30) == 0
    finally:
        again.kill()


def test_a_recording_piped_to_standard_input_is_transcribed_as_its_kind(tmp_path: Path) -> None:
    import sys

    from tests.cli_process import user_environment

    piped = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", "transcribe", "-", "--instant", "--quiet"],
        input=tone_wav(1),
        capture_output=True,
        cwd=tmp_path,
        env={**user_environment(), "PYTHONUNBUFFERED": "1"},
        timeout=120,
    )
    assert piped.returncode == 0, piped.stderr
    assert b"fixed transcript" in piped.stdout
    assert (tmp_path / "transcripts" / "stdin.wav.json").stat().st_size > 0  # named by its first bytes
    twice = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", "transcribe", "-", "-", "--instant"],
        input=b"",
        capture_output=True,
        cwd=tmp_path,
        env=user_environment(),
        timeout=60,
    )
    assert twice.returncode == 2 and twice.stderr.count(b"\n") == 1 and b"can be named once" in twice.stderr

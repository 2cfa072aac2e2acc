"""`status`, `jobs`, `redrive` and `usage` against a running `bucketscribe up`, with nothing exported:
each command is the real CLI in a process of its own, in a shell that has none of the stack's
settings (no BUCKETSCRIBE_*, no AWS_*), as a user who has just started `up` in another terminal.

Every exit code is provoked for real: 0 (DONE), 1 (FAILED, a timeout), 2 (no stack to find), 130
(Ctrl-C while waiting). No sleeps: each wait is for a line or a state, with a deadline."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.audio import tone_wav
from tests.cli_process import CliProcess, user_environment

pytestmark = pytest.mark.e2e


def _command(*args: str, runtime: Path, timeout: float = 60) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**user_environment(), "XDG_RUNTIME_DIR": str(runtime)},
        check=False,
    )
    return done.returncode, done.stdout, done.stderr


def _shell(lines: str, *, runtime: Path | None = None) -> str:
    """Run ``lines`` as a user's shell would (none of the stack's settings; ``runtime``: the
    XDG_RUNTIME_DIR where that user's `up` announced itself); every line must succeed."""
    env = {**user_environment(), **({"XDG_RUNTIME_DIR": str(runtime)} if runtime else {})}
    done = subprocess.run(
        ["bash", "-e", "-c", lines], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    assert done.returncode == 0, f"{lines}\nexit {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _up(runtime: Path, *args: str) -> tuple[CliProcess, dict[str, Any]]:
    process = CliProcess(
        "up", "--instant", "--port", "0", "--json", *args, env={"XDG_RUNTIME_DIR": str(runtime)}
    )
    line = process.wait_for(r"^\{.*\}$", stream="stdout").group(0)
    return process, json.loads(line)


def _faults(details: dict[str, Any], plan: dict[str, Any]) -> None:
    """Turn the SIS emulator's fault knobs, as BUCKETSCRIBE_LOCAL_FAULTS would at start."""
    request = urllib.request.Request(
        details["sis_endpoint"] + "/_emulator/faults",
        data=json.dumps(plan).encode(),
        method="PUT",
        headers={"Content-Type": "application/json"},
    )
    urllib.request.urlopen(request, timeout=10).close()


def _upload(details: dict[str, Any], key: str, body: bytes, folder: Path) -> None:
    path = folder / key.replace("/", "_")
    path.write_bytes(body)
    upload = details["example"]["upload"]
    _shell(upload.replace(details["example"]["file"], str(path)).replace(details["example"]["key"], key))


def _no_traceback(*streams: str) -> None:
    for text in streams:
        assert "Traceback" not in text, text


def test_with_no_stack_running_and_nothing_set_each_command_says_so_in_one_line(tmp_path: Path) -> None:
    for args in (["status", "s3://recordings/incoming/a.wav"], ["jobs"], ["usage"], ["redrive", "--failed"]):
        code, out, err = _command(*args, runtime=tmp_path)
        assert code == 2, (args, err)
        assert out == "" and err.count("\n") == 1, err
        assert err.startswith("bucketscribe: error: no job store to read: no `bucketscribe up` is running")


def test_the_operator_commands_follow_a_running_up_with_nothing_exported(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    process, details = _up(runtime)
    bucket = details["bucket"]
    try:
        # The example as printed: upload, wait for it (exit 0 when DONE), read the transcript.
        _shell(details["example"]["upload"])
        code, out, err = _command(*details["example"]["wait"].split()[1:], runtime=runtime)
        assert code == 0, err
        assert out.startswith("DONE") and f"output  s3://{bucket}/transcripts/hello_en.wav.txt" in out
        assert "hello_en.wav  done" in err  # the progress, on stderr
        assert "fixed transcript" in _shell(details["example"]["transcript"])

        # A failing upload: --wait exits 1 with the job's code; redrive sends it back.
        _faults(details, {"job_failure_rate": 1.0})
        _upload(details, "incoming/fails.wav", tone_wav(1.0), tmp_path)
        code, out, err = _command(
            "status", "--wait", "--json", f"s3://{bucket}/incoming/fails.wav", runtime=runtime
        )
        assert code == 1, err
        failed = json.loads(out)["latest"]
        assert failed["state"] == "FAILED" and failed["error"]["code"]
        code, out, err = _command("redrive", failed["id"], "--reason", "retry it", runtime=runtime)
        assert code == 0 and out.startswith(f"REDRIVEN     {failed['id']}"), out + err

        # A job held at the service: --timeout gives up with exit 1, saying where it stands.
        _faults(details, {"processing_delay_s": 600})
        _upload(details, "incoming/held.wav", tone_wav(1.0), tmp_path)
        code, out, err = _command(
            "status", "--wait", "--timeout", "3", f"s3://{bucket}/incoming/held.wav", runtime=runtime
        )
        assert code == 1 and "after --timeout 3 s" in err.splitlines()[-1], err
        # Ctrl-C while waiting: 130, no traceback.
        waiting = CliProcess(
            "status", "--wait", f"s3://{bucket}/incoming/held.wav", env={"XDG_RUNTIME_DIR": str(runtime)}
        )
        waiting.wait_for(r"held\.wav\s+(queued|submitted|transcribing)")
        waiting.interrupt()
        assert waiting.finish(timeout=30) == 130
        _no_traceback(waiting.stderr)

        # usage: its totals are the sums over the job records as `jobs --json` lists them.
        code, listed, err = _command("jobs", "--json", "--limit", "1000", runtime=runtime)
        assert code == 0, err
        records = [json.loads(line) for line in listed.splitlines()]
        assert {r["key"] for r in records} == {
            "incoming/hello_en.wav",
            "incoming/fails.wav",
            "incoming/held.wav",
        }
        code, out, err = _command("usage", "--json", "--by", "profile", runtime=runtime)
        assert code == 0, err
        total = json.loads(out)["total"]
        assert total["files"] == len(records)
        assert total["done"] == sum(r["state"] == "DONE" for r in records)
        assert total["provider_jobs"] == sum(
            1 for r in records for a in r["attempts"] if a["provider_task_id"]
        )
        assert total["audio_minutes"] == pytest.approx(
            sum(r["media"]["duration_ms"] for r in records) / 60_000
        )
        code, out, _ = _command("usage", "--by", "provider", runtime=runtime)
        assert code == 0 and "PROVIDER" in out and "the local stack on 127.0.0.1:" in out
        process.interrupt()
        assert process.finish(timeout=30) == 0
    finally:
        process.kill()
    # Once up has stopped, nothing finds it any more.
    assert _command("jobs", runtime=runtime)[0] == 2


def test_jobs_watch_prints_a_line_per_change_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    process, details = _up(runtime)
    try:
        watch = CliProcess("jobs", "--watch", env={"XDG_RUNTIME_DIR": str(runtime)})
        try:
            _shell(details["example"]["upload"])
            watch.wait_for(r"s3://recordings/incoming/hello_en\.wav\s+done", stream="stdout")
            watch.wait_for(r"\[1/1 done", stream="stdout")
            watch.interrupt()
            assert watch.finish(timeout=30) == 0
        finally:
            watch.kill()
        assert "\x1b" not in watch.stdout  # not a terminal: plain lines, no board
        _no_traceback(watch.stderr)
        process.interrupt()
        assert process.finish(timeout=30) == 0
    finally:
        process.kill()


def test_the_printed_example_works_pasted_as_one_block_on_each_cloud(tmp_path: Path) -> None:
    for cloud, scheme in (("aws", "s3"), ("huawei", "obs")):
        runtime = tmp_path / cloud
        process = CliProcess(
            "up", "--instant", "--port", "0", "--cloud", cloud, env={"XDG_RUNTIME_DIR": str(runtime)}
        )
        try:
            process.wait_for(r"Ctrl-C stops", stream="stdout")
            banner = process.stdout
            block = banner.split("Try it (works as printed", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
            assert len(block) == 3
            # One paste, no pause between the lines; each must succeed (bash -e).
            pasted = _shell("\n".join(line.strip() for line in block), runtime=runtime)
            assert "fixed transcript" in pasted
            code, out, err = _command(
                "status", f"{scheme}://recordings/incoming/hello_en.wav", runtime=runtime
            )
            assert code == 0, err
            assert f"output  {scheme}://recordings/transcripts/hello_en.wav.txt" in out
            process.interrupt()
            assert process.finish(timeout=30) == 0
        finally:
            process.kill()
        if cloud == "huawei":
            assert (
                "OBS endpoint" in banner
                and "OBS_ACCESS_KEY_ID=" in banner
                and "from obs import ObsClient" in banner
            )
            assert "AWS_ACCESS_KEY_ID" not in banner and "S3 endpoint" not in banner
            assert f"status --wait {scheme}://recordings/incoming/hello_en.wav" in banner
        else:
            assert "S3 endpoint" in banner and "AWS_ACCESS_KEY_ID=" in banner and "--aws-sigv4" in banner

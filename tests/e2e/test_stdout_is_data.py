"""Nothing but data on stdout, ever: every stdout line of `transcribe --json` and `up --json` is one
JSON object, in every run. A function log line that a worker thread writes while the stack stops
(or after) lands on stderr; it once came after the summary on stdout, in 2 of 4 runs, breaking
`| jq`. So the real CLI runs many times, with the emulators repeating every callback late (more
log lines from threads that outlive the results), and each run's stdout is parsed whole."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.audio import tone_wav
from tests.cli_process import CliProcess

pytestmark = pytest.mark.e2e

RUNS = 4
# Every callback sent twice, the second a little later: it reaches the callback function while the
# command is collecting outputs and stopping, and the function logs what it did with it.
LATE_REPEATS = {
    "BUCKETSCRIBE_LOCAL_FAULTS": json.dumps({"duplicate_callback_rate": 1.0, "callback_delay_s": 0.3})
}


def _json_lines(stdout: str) -> list[dict[str, object]]:
    events = []
    for number, line in enumerate(stdout.splitlines(), 1):
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            raise AssertionError(f"stdout line {number} is not JSON: {line!r}\nstdout:\n{stdout}") from None
        assert isinstance(event, dict), line
        events.append(event)
    return events


@pytest.mark.parametrize("run", range(RUNS))
def test_transcribe_json_prints_only_json_events_on_stdout(tmp_path: Path, run: int) -> None:
    files = []
    for name in ("a.wav", "b.wav"):
        files.append(tmp_path / name)
        files[-1].write_bytes(tone_wav(1.0))
    process = CliProcess(
        "transcribe",
        *map(str, files),
        "--instant",
        "--json",
        "--out",
        str(tmp_path / "out"),
        env=LATE_REPEATS,
    )
    code = process.finish(timeout=120)
    assert code == 0, process.stderr
    events = _json_lines(process.stdout)
    assert events[-1]["event"] == "summary" and events[-1]["done"] == 2  # and nothing after it


def test_up_json_prints_one_json_line_and_its_logs_go_to_stderr(tmp_path: Path) -> None:
    process = CliProcess("up", "--instant", "--port", "0", "--json", env={"XDG_RUNTIME_DIR": str(tmp_path)})
    try:
        line = process.wait_for(r"^\{.*", stream="stdout").group(0)
        stack = json.loads(line)
        s3 = boto3.client(
            "s3",
            endpoint_url=stack["s3_endpoint"],
            region_name=stack["region"],
            aws_access_key_id=stack["access_key_id"],
            aws_secret_access_key=stack["secret_access_key"],
        )
        s3.put_object(Bucket=stack["bucket"], Key=f"{stack['input_prefix']}call.wav", Body=tone_wav(1.0))
        process.wait_for(r'"level"', stream="stderr")  # the submit function's log line: on stderr
        process.interrupt()
        assert process.finish(timeout=30) == 0
    finally:
        process.kill()
    (details,) = _json_lines(process.stdout)
    assert "s3_endpoint" in details

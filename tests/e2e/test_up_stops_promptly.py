"""`bucketscribe up` is gone within a second of Ctrl-C (the README's exit-code paragraph says so).

The bound is a deadline, not a speed claim. Measured on the 2-core CI-class machine under load
average 5-6: 0.03-0.15 s from SIGINT to exit, for both cloud shapes. Before this was fixed it
took 0.9-2.4 s there (and 2-6 s at load 5-10 in the issue's three timed stops): moto's server
polls for shutdown every 0.5 s, and tearing down the interpreter (boto3, moto, the emulators'
modules) took another 1-1.7 s. A bound of 1 s is the promise itself; it leaves the fixed command
more than six times its measured worst case on a loaded machine, and fails the old behaviour.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli_process import CliProcess

pytestmark = pytest.mark.e2e

PROMISED_S = 1.0


@pytest.mark.parametrize("cloud", ["aws", "huawei"])
def test_up_exits_within_a_second_of_ctrl_c(tmp_path: Path, cloud: str) -> None:
    process = CliProcess(
        "up", "--instant", "--port", "0", "--json", "--cloud", cloud, env={"XDG_RUNTIME_DIR": str(tmp_path)}
    )
    try:
        details = json.loads(process.wait_for(r"^\{.*\}$", stream="stdout").group(0))
        # Stopped at work, not just started: an upload goes through every part first.
        subprocess.run(
            ["bash", "-c", details["example"]["upload"]], check=True, timeout=30, capture_output=True
        )
        process.wait_for(r'"message":"Transcript written"')
        interrupted = time.monotonic()
        process.interrupt()
        code = process.process.wait(timeout=30)
        took = time.monotonic() - interrupted
    finally:
        process.kill()
    assert code == 0
    assert took < PROMISED_S, f"up took {took:.2f} s to stop after Ctrl-C"
    assert not list((tmp_path / "bucketscribe").glob("up-*.json"))  # withdrawn: commands stop finding it

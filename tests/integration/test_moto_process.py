"""The local stack's moto server runs in a process of its own: it serves, it stops when told, it
outlives a Ctrl-C (the stack saves through it first), and it goes when the process that started
it is killed, so no server is left holding the port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import boto3
import pytest
from bucketscribe_local.moto_process import MotoProcess

from tests.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (ended, not yet reaped by its parent) is gone as far as a server goes.
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        return stat.read().split()[2] != "Z"


def test_it_serves_outlives_a_ctrl_c_and_stops_when_told() -> None:
    server = MotoProcess().start()
    host, port = server.get_host_and_port()
    s3 = boto3.client(
        "s3",
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    s3.create_bucket(Bucket="moto-process-test")
    assert server._process is not None
    pid = server._process.pid
    os.kill(pid, signal.SIGINT)
    assert s3.list_buckets()["Buckets"][0]["Name"] == "moto-process-test"  # still serving
    server.stop()
    wait_until(lambda: not alive(pid), timeout_s=DEADLINE_S, what="the moto process to end")


def test_it_goes_when_the_process_that_started_it_is_killed() -> None:
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import signal\n"
            "from bucketscribe_local.moto_process import MotoProcess\n"
            "server = MotoProcess().start()\n"
            "print(server._process.pid, flush=True)\n"
            "signal.pause()  # until it is killed\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert starter.stdout is not None
    child = int(starter.stdout.readline())
    assert alive(child)
    starter.kill()
    starter.wait(timeout=DEADLINE_S)
    wait_until(lambda: not alive(child), timeout_s=DEADLINE_S, what="the orphaned moto process to end")

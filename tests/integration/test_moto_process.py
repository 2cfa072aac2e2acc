"""The local stack's moto server runs in a process of its own: it serves, it stops when told, it
outlives a Ctrl-C (the stack saves through it first), and it goes when the process that started
it is killed, so no server is left holding the port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Literal

import boto3
import pytest
from bucketscribe_local.moto_process import Latency, MotoProcess, latency_kind, retention_read_directly

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


def client_of(server: MotoProcess, service: Literal["s3", "dynamodb"]) -> Any:
    host, port = server.get_host_and_port()
    return boto3.client(
        service,
        endpoint_url=f"http://{host}:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def test_it_serves_outlives_a_ctrl_c_and_stops_when_told() -> None:
    server = MotoProcess().start()
    s3 = client_of(server, "s3")
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


def test_a_latency_holds_the_requests_of_its_kind() -> None:
    """A bench's model of the cloud's round trips: a request of a kind with a latency is answered
    at least that much later (only the lower bound is asserted: a loaded machine answers later,
    never sooner), and answered right."""
    latency_s = 0.5
    server = MotoProcess(latencies={"dynamodb.read": latency_s}).start()
    try:
        db = client_of(server, "dynamodb")
        db.create_table(
            TableName="latency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        db.put_item(TableName="latency", Item={"id": {"S": "a"}})
        started = time.monotonic()
        read = db.get_item(TableName="latency", Key={"id": {"S": "a"}})
        assert time.monotonic() - started >= latency_s
        assert read["Item"]["id"]["S"] == "a"
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem", "REQUEST_METHOD": "POST"}, "dynamodb.read"),
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem", "REQUEST_METHOD": "POST"}, "dynamodb.write"),
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.Query", "REQUEST_METHOD": "POST"}, "dynamodb.query"),
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage", "REQUEST_METHOD": "POST"}, None),
        (
            {"REQUEST_METHOD": "POST", "CONTENT_TYPE": "application/x-www-form-urlencoded; charset=utf-8"},
            None,
        ),
        ({"REQUEST_METHOD": "HEAD", "PATH_INFO": "/bucket/key.wav"}, "s3.head"),
        (
            {"REQUEST_METHOD": "GET", "PATH_INFO": "/bucket/key.wav", "QUERY_STRING": "X-Amz-Signature=x"},
            "s3.get",
        ),
        ({"REQUEST_METHOD": "PUT", "PATH_INFO": "/bucket/key.wav.txt"}, "s3.put"),
        ({"REQUEST_METHOD": "DELETE", "PATH_INFO": "/bucket/key.wav.error.json"}, "s3.delete"),
    ],
)
def test_each_request_is_told_by_what_it_does(environ: dict[str, str], kind: str | None) -> None:
    assert latency_kind(environ) == kind


def test_a_latency_for_a_kind_there_is_not_is_refused() -> None:
    with pytest.raises(ValueError, match="no such request kinds"):
        Latency(lambda environ, start_response: [], {"dynamodb.reads": 0.1})


def test_a_message_is_within_its_queues_retention_exactly_when_moto_itself_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``retention_read_directly`` gives moto's own answer, read from the queue in one step."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import SQSBackend, sqs_backends

    backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
    backend.create_queue("retention-check", MessageRetentionPeriod="60")
    message = backend.send_message("retention-check", "hello")
    own = SQSBackend.is_message_valid_based_on_retention_period
    monkeypatch.setattr(SQSBackend, "is_message_valid_based_on_retention_period", own)
    retention_read_directly()
    read_directly = SQSBackend.is_message_valid_based_on_retention_period
    assert read_directly is not own
    for sent_ago_s in (0, 59, 61, 3600):
        message.sent_timestamp = int((time.time() - sent_ago_s) * 1000)  # type: ignore[assignment]
        assert read_directly(backend, "retention-check", message) == own(backend, "retention-check", message)
    backend.delete_queue("retention-check")

"""moto server in a process of its own: the local stack's AWS, beside the functions, not inside them.

The functions, the emulators and moto used to share one Python process, so one interpreter lock:
every S3 or DynamoDB request the functions made was served on the same core that ran them, and
a burst measured the two queued behind each other rather than the pipeline (in the cloud the
services run elsewhere). In its own process moto serves on another core.

The process ignores Ctrl-C (the stack decides when it stops: ``up`` saves the bucket and the jobs
first, through this server), ends on SIGTERM, and ends by itself once the process that started
it is gone, so a killed ``up`` leaves no server holding the port.

Run by ``MotoProcess``; ``python -m bucketscribe_local.moto_process --help`` for its arguments.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

# How long the child may take to import moto and listen (a loaded 2-core machine: several seconds).
START_TIMEOUT_S = 60.0
# How often the child looks whether the process that started it is still there.
PARENT_CHECK_S = 0.2


class MotoProcess:
    """Starts, addresses and stops the moto server process (the ``ThreadedMotoServer`` interface
    the stack uses: ``start``, ``get_host_and_port``, ``stop``)."""

    def __init__(
        self,
        *,
        port: int = 0,
        request_log: Path | None = None,
        latencies: Mapping[str, float] | None = None,
    ) -> None:
        self._port = port
        self._request_log = request_log
        self._latencies = dict(latencies or {})
        self._process: subprocess.Popen[str] | None = None
        self._bound: int | None = None

    def start(self) -> MotoProcess:
        command = [sys.executable, "-m", __name__, "--port", str(self._port), "--parent", str(os.getpid())]
        if self._request_log is not None:
            command += ["--request-log", str(self._request_log)]
        if self._latencies:
            command += ["--latencies", json.dumps(self._latencies)]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self._bound = self._await_port(self._process)
        return self

    @staticmethod
    def _await_port(process: subprocess.Popen[str]) -> int:
        assert process.stdout is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([process.stdout], [], [], min(left, 0.5))
            if ready:
                line = process.stdout.readline()
                if line.strip().isdigit():
                    return int(line)
            if process.poll() is not None:
                raise RuntimeError(f"moto server stopped as it started (exit code {process.returncode})")
        process.kill()
        raise RuntimeError(f"moto server did not start listening within {START_TIMEOUT_S:.0f} s")

    def get_host_and_port(self) -> tuple[str, int]:
        assert self._bound is not None, "start() first"
        return "127.0.0.1", self._bound

    def stop(self, *, wait: bool = True) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        if not wait:
            return  # the process leaves: the server goes with it (it watches us)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# ----- the child process --------------------------------------------------------------------------


class RequestLog:
    """Every request moto serves, one JSON line each, written before it is answered (a bench
    reads what a step cost once the step has returned)."""

    def __init__(self, app: Callable[..., Any], path: Path) -> None:
        self._app = app
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        query = environ.get("QUERY_STRING", "")
        line = json.dumps(
            {
                "method": environ.get("REQUEST_METHOD", ""),
                "path": environ.get("PATH_INFO", ""),
                "signed_by_botocore": environ.get("HTTP_AUTHORIZATION", "").startswith("AWS4-HMAC-SHA256"),
                "presigned": "X-Amz-Signature=" in query or "Signature=" in query,
                "user_agent": environ.get("HTTP_USER_AGENT", ""),
                # A JSON protocol's operation ("DynamoDB_20120810.PutItem", "AmazonSQS.ReceiveMessage").
                "target": environ.get("HTTP_X_AMZ_TARGET", ""),
            }
        )
        with self._lock:
            self._file.write(line + "\n")
        result: Iterable[bytes] = self._app(environ, start_response)
        return result


# The kinds of request a latency can be given for (``Latency``), by what the request does.
LATENCY_KINDS = (
    "dynamodb.read",
    "dynamodb.write",
    "dynamodb.query",
    "s3.head",
    "s3.get",
    "s3.put",
    "s3.delete",
)
_DYNAMODB_KINDS = {
    "GetItem": "dynamodb.read",
    "BatchGetItem": "dynamodb.read",
    "PutItem": "dynamodb.write",
    "UpdateItem": "dynamodb.write",
    "DeleteItem": "dynamodb.write",
    "Query": "dynamodb.query",
    "Scan": "dynamodb.query",
}
_S3_KINDS = {"HEAD": "s3.head", "GET": "s3.get", "PUT": "s3.put", "POST": "s3.put", "DELETE": "s3.delete"}


def latency_kind(environ: Mapping[str, Any]) -> str | None:
    """What a request to moto does, as ``LATENCY_KINDS`` names it (None: another service's)."""
    target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
    if target.startswith("DynamoDB_"):
        return _DYNAMODB_KINDS.get(target.rsplit(".", 1)[-1])
    if target:
        return None  # SQS, Secrets Manager, ... (JSON protocols name their operation here)
    if "Action=" in str(environ.get("QUERY_STRING", "")) or environ.get("CONTENT_TYPE", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return None  # the query protocols (SQS, SNS, STS)
    return _S3_KINDS.get(str(environ.get("REQUEST_METHOD", "")))


class Latency:
    """Each request answered its kind's latency later, as a service across a network would (a
    benchmark's model of the cloud; requests in flight together wait side by side)."""

    def __init__(self, app: Callable[..., Any], latencies: Mapping[str, float]) -> None:
        unknown = set(latencies) - set(LATENCY_KINDS)
        if unknown:
            raise ValueError(f"no such request kinds: {sorted(unknown)}; known: {LATENCY_KINDS}")
        self._app = app
        self._latencies = dict(latencies)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        kind = latency_kind(environ)
        if kind is not None and (seconds := self._latencies.get(kind, 0.0)) > 0:
            time.sleep(seconds)
        result: Iterable[bytes] = self._app(environ, start_response)
        return result


def _list_backends_once() -> None:
    """moto's server lists its package's folders (a ``listdir`` and an ``isdir`` per backend,
    some 150) for every request it routes; they do not change while it runs: listed once."""
    from moto import backends

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def retention_read_directly() -> None:
    """moto's SQS asks, for each message it hands out, whether the message is within its queue's
    retention period by computing every attribute of the queue (its message counts among them, a
    pass over all its messages): a receive from a queue of n messages cost n^2, some 8 % of moto's
    time in a 100-upload burst. The period is read from the queue instead; the answer is the same."""
    from moto.core.utils import unix_time
    from moto.sqs.models import Message, SQSBackend

    def within_retention(self: SQSBackend, queue_name: str, message: Message) -> bool:
        # Set from the queue's attributes by name (``Queue._set_attributes``), hence getattr.
        period = int(getattr(self.get_queue(queue_name), "message_retention_period"))  # noqa: B009
        return period + (message.sent_timestamp or 0) / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = within_retention  # type: ignore[method-assign]


def serve(port: int, parent: int, request_log: Path | None, latencies: Mapping[str, float]) -> None:
    from moto.server import ThreadedMotoServer

    from bucketscribe_local.s3_events import add_version_ids_to_moto_events

    # The stack reports progress itself; moto's werkzeug server would log every request.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    add_version_ids_to_moto_events()
    _list_backends_once()
    retention_read_directly()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    wsgi = server._server  # werkzeug's server calls .app per request
    assert wsgi is not None
    if latencies:
        wsgi.app = Latency(wsgi.app, latencies)
    if request_log is not None:
        wsgi.app = RequestLog(wsgi.app, request_log)
    print(server.get_host_and_port()[1], flush=True)
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_S)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="moto server for the local stack (run by MotoProcess)")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed once listening)")
    parser.add_argument("--parent", type=int, required=True, help="end once this process is gone")
    parser.add_argument("--request-log", type=Path, help="write each request as a JSON line here")
    parser.add_argument(
        "--latencies",
        type=json.loads,
        default={},
        help=f"JSON: seconds added to each request of a kind (kinds: {', '.join(LATENCY_KINDS)})",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the stack stops it, after saving through it
    serve(args.port, args.parent, args.request_log, args.latencies)
    return 0


if __name__ == "__main__":
    sys.exit(main())

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_endpoint: str) -> Iterator[str]:
    """A moto server with an empty account for each test."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST")).close()
    yield moto_endpoint


def client(service: str, endpoint: str) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )


@pytest.fixture(scope="session")
def media() -> Iterator[str]:
    """A plain HTTP server standing in for a bucket's presigned URLs: every path is a short WAV."""
    from aiohttp import web
    from bucketscribe_local.http_thread import BackgroundHttpServer

    from tests.audio import tone_wav

    app = web.Application()
    body = tone_wav(0.5)

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="audio/wav")

    app.router.add_get("/media/{name}", serve)
    with BackgroundHttpServer(app) as server:
        yield f"{server.url}/media"


# --- a moto server that checks signatures ------------------------------------------------


@dataclass
class AuthMoto:
    endpoint: str
    ak: str
    sk: str


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def auth_moto() -> Iterator[AuthMoto]:
    """A moto server that verifies SigV4 (a subprocess: moto's auth switch is process-wide), with
    one IAM user allowed everything and a bucket ``recordings``; the first 3 calls (making the
    user) are free."""
    port = free_port()
    env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("moto server with auth did not start") from None
                time.sleep(0.05)
        iam = client("iam", endpoint)
        iam.create_user(UserName="scribe")
        iam.put_user_policy(
            UserName="scribe",
            PolicyName="everything",
            PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            ),
        )
        key = iam.create_access_key(UserName="scribe")["AccessKey"]
        ak, sk = key["AccessKeyId"], key["SecretAccessKey"]
        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ak,
            aws_secret_access_key=sk,
        ).create_bucket(Bucket="recordings")
        yield AuthMoto(endpoint, ak, sk)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

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


def client(service: str, endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client(
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

    from bucketscribe.local.http_thread import BackgroundHttpServer
    from tests.audio import tone_wav

    app = web.Application()
    body = tone_wav(0.5)

    async def serve(_: web.Request) -> web.Response:
        return web.Response(body=body, content_type="audio/wav")

    app.router.add_get("/media/{name}", serve)
    with BackgroundHttpServer(app) as server:
        yield f"{server.url}/media"

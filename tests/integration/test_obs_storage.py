"""The OBS adapter over the real wire: the real esdk-obs-python ObsClient against moto server.

moto speaks S3, which OBS also speaks with signature v4 (region-scoped) or v2, path-style.
Default moto accepts any signature, so a second moto — a subprocess started with
authentication on — checks that the SDK's SigV4 signatures (non-ASCII keys and the
Range header included) really verify, and that a wrong secret is refused.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer
from pydantic import SecretStr
from yarl import URL

from bucketscribe.clouds.huawei.storage import ObsStorage, ObsStorageError
from bucketscribe.ports.secrets import MissingSecret
from tests.integration.conftest import AuthMoto, client, free_port

pytestmark = pytest.mark.integration

KEY = "incoming/a b+c/ünï côde.wav"
BUCKET = "recordings"


def obs_storage(endpoint: str, *, signature: str, ak: str = "t", sk: str = "t") -> ObsStorage:
    # The production constructor, with the settings that S3-compatible servers need.
    return ObsStorage(
        server=endpoint,
        access_key_id=ak,
        secret_access_key=SecretStr(sk),
        region="us-east-1",
        signature=signature,
        path_style=True,
    )


@pytest.fixture(params=["v4", "v2"])
def storage(request: pytest.FixtureRequest, aws: str) -> ObsStorage:
    client("s3", aws).create_bucket(Bucket=BUCKET)
    return obs_storage(aws, signature=request.param)


def test_head_get_put_and_ranged_read(storage: ObsStorage, tmp_path: Path) -> None:
    storage.put(BUCKET, KEY, b"RIFF0123456789", content_type="audio/wav")
    info = storage.head(BUCKET, KEY)
    assert info is not None
    assert info.size == 14 and info.etag and info.content_type == "audio/wav"
    assert storage.read_head(BUCKET, KEY, 4) == b"RIFF"
    assert storage.get(BUCKET, KEY) == b"RIFF0123456789"
    assert storage.head(BUCKET, "missing.wav") is None
    storage.download(BUCKET, KEY, tmp_path / "x")
    assert (tmp_path / "x").read_bytes() == b"RIFF0123456789"
    storage.upload(BUCKET, "transcripts/y.ogg", tmp_path / "x", content_type="audio/ogg")
    uploaded = storage.head(BUCKET, "transcripts/y.ogg")
    assert uploaded is not None and uploaded.content_type == "audio/ogg" and uploaded.size == 14


def test_the_key_reaches_the_bucket_unchanged(storage: ObsStorage, aws: str) -> None:
    storage.put(BUCKET, KEY, b"x", content_type="audio/wav")
    listed = client("s3", aws).list_objects_v2(Bucket=BUCKET)["Contents"]
    assert [item["Key"] for item in listed] == [KEY]


def test_presigned_url_fetches_the_object_without_credentials(storage: ObsStorage) -> None:
    storage.put(BUCKET, KEY, b"audio bytes", content_type="audio/wav")
    url = storage.presign_get(BUCKET, KEY, expires_s=12 * 3600)
    if "X-Amz-Algorithm=" in url:
        assert "X-Amz-Signature=" in url and "X-Amz-Expires=43200" in url
    else:  # v2: an absolute expiry time
        assert "Signature=" in url and "AWSAccessKeyId=t" in url
        expires = int(url.split("Expires=")[1].split("&")[0])
        assert abs(expires - (time.time() + 43200)) < 60
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.read() == b"audio bytes"


def test_version_id_is_reported_on_a_versioned_bucket(storage: ObsStorage, aws: str) -> None:
    client("s3", aws).put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    storage.put(BUCKET, KEY, b"v1", content_type="audio/wav")
    info = storage.head(BUCKET, KEY)
    assert info is not None and info.version_id


def test_errors_name_the_object_status_and_code(storage: ObsStorage, tmp_path: Path) -> None:
    with pytest.raises(ObsStorageError) as missing_key:
        storage.get(BUCKET, "nope/missing.wav")
    assert missing_key.value.status == 404 and missing_key.value.error_code == "NoSuchKey"
    message = str(missing_key.value)
    assert "obs://recordings/nope/missing.wav" in message and "NoSuchKey" in message

    with pytest.raises(ObsStorageError) as missing_bucket:
        storage.read_head("no-such-bucket", KEY, 4)
    assert missing_bucket.value.status == 404 and missing_bucket.value.error_code == "NoSuchBucket"

    dest = tmp_path / "never.wav"
    with pytest.raises(ObsStorageError):
        storage.download(BUCKET, "nope/missing.wav", dest)
    assert list(tmp_path.iterdir()) == []  # neither the file nor a partial one


def test_read_head_of_an_empty_object_is_empty(storage: ObsStorage) -> None:
    storage.put(BUCKET, "empty.wav", b"", content_type="audio/wav")
    assert storage.read_head(BUCKET, "empty.wav", 4) == b""


def test_upload_refuses_a_directory(storage: ObsStorage, tmp_path: Path) -> None:
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(FileNotFoundError):
        storage.upload(BUCKET, "dir", tmp_path, content_type="audio/wav")


# --- the ranged read, seen on the wire ------------------------------------------------


@dataclass
class Exchange:
    method: str
    raw_path: str
    range: str | None
    status: int
    body_bytes: int


class RecordingProxy:
    """Forwards every request to moto unchanged and records what crossed the wire."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.exchanges: list[Exchange] = []
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.server = BackgroundHttpServer(app)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        sent = await request.read()
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(
                request.method,
                URL(self.upstream + request.raw_path, encoded=True),
                headers=headers,
                data=sent,
                allow_redirects=False,
            ) as upstream,
        ):
            body = await upstream.read()
        range_asked = request.headers.get("Range")
        self.exchanges.append(
            Exchange(request.method, request.raw_path, range_asked, upstream.status, len(body))
        )
        passed = {
            k: v
            for k, v in upstream.headers.items()
            if k.lower() not in ("content-length", "transfer-encoding", "connection")
        }
        return web.Response(status=upstream.status, body=body, headers=passed)


@pytest.fixture
def proxy(aws: str) -> Iterator[RecordingProxy]:
    recording = RecordingProxy(aws)
    with recording.server:
        yield recording


@pytest.mark.parametrize("signature", ["v4", "v2"])
def test_read_head_asks_for_a_range_and_gets_only_those_bytes(
    aws: str, proxy: RecordingProxy, signature: str
) -> None:
    megabyte = bytes(range(256)) * 4096
    s3 = client("s3", aws)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=KEY, Body=megabyte, ContentType="audio/wav")

    storage = obs_storage(proxy.server.url, signature=signature)
    assert storage.read_head(BUCKET, KEY, 4) == megabyte[:4]

    [exchange] = proxy.exchanges
    assert exchange.method == "GET" and exchange.range == "bytes=0-3"
    assert exchange.status == 206 and exchange.body_bytes == 4
    assert urllib.parse.unquote(exchange.raw_path) == f"/{BUCKET}/{KEY}"


# --- signatures checked by a server that verifies them ------------------------------------


def test_v4_signatures_verify_on_a_checking_server(auth_moto: AuthMoto, tmp_path: Path) -> None:
    storage = obs_storage(auth_moto.endpoint, signature="v4", ak=auth_moto.ak, sk=auth_moto.sk)
    storage.put(BUCKET, KEY, b"RIFF0123456789", content_type="audio/wav")
    info = storage.head(BUCKET, KEY)
    assert info is not None and info.size == 14
    assert storage.read_head(BUCKET, KEY, 4) == b"RIFF"
    assert storage.get(BUCKET, KEY) == b"RIFF0123456789"
    storage.download(BUCKET, KEY, tmp_path / "x")
    storage.upload(BUCKET, "transcripts/ünï.ogg", tmp_path / "x", content_type="audio/ogg")
    assert storage.get(BUCKET, "transcripts/ünï.ogg") == b"RIFF0123456789"


def test_a_wrong_secret_is_refused_and_never_echoed(auth_moto: AuthMoto) -> None:
    wrong = "wrong-secret-0123456789abcdef"
    storage = obs_storage(auth_moto.endpoint, signature="v4", ak=auth_moto.ak, sk=wrong)
    with pytest.raises(ObsStorageError) as refused:
        storage.put(BUCKET, KEY, b"x", content_type="audio/wav")
    assert refused.value.status == 403 and refused.value.error_code == "SignatureDoesNotMatch"
    with pytest.raises(ObsStorageError) as head_refused:  # only a 404 reads as "absent"
        storage.head(BUCKET, KEY)
    assert head_refused.value.status == 403
    assert wrong not in str(refused.value) and wrong not in str(head_refused.value)


def test_credentials_come_from_the_huaweicloud_environment(
    auth_moto: AuthMoto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", auth_moto.ak)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", auth_moto.sk)
    storage = ObsStorage(server=auth_moto.endpoint, region="us-east-1", path_style=True)
    storage.put(BUCKET, "from-env.txt", b"ok", content_type="text/plain")
    assert storage.get(BUCKET, "from-env.txt") == b"ok"


def test_missing_credentials_are_refused_up_front(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUAWEICLOUD_SDK_AK", raising=False)
    monkeypatch.delenv("HUAWEICLOUD_SDK_SK", raising=False)
    with pytest.raises(MissingSecret, match="HUAWEICLOUD_SDK_AK"):
        ObsStorage(server="http://127.0.0.1:1")


def test_an_unreachable_server_raises_a_storage_error() -> None:
    from obs import ObsClient

    port = free_port()  # nothing listens there once the probe socket is closed
    sdk = ObsClient(
        access_key_id="t",
        secret_access_key="t",
        server=f"http://127.0.0.1:{port}",
        signature="v4",
        region="us-east-1",
        path_style=True,
        is_signature_negotiation=False,
        max_retry_count=0,
        timeout=5,
    )
    with pytest.raises(ObsStorageError) as unreachable:
        ObsStorage(sdk).get(BUCKET, KEY)
    assert unreachable.value.status is None and f"obs://{BUCKET}/{KEY}" in str(unreachable.value)


def test_settings_select_the_obs_adapter(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """BUCKETSCRIBE_CLOUD=huawei makes the functions use OBS for every storage call."""
    from bucketscribe.clouds.huawei.storage import ObsStorage as Selected
    from bucketscribe.clouds.registry import cloud
    from bucketscribe.settings import Settings

    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", "ak")
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", "sk")
    monkeypatch.setenv("BUCKETSCRIBE_CLOUD", "huawei")
    monkeypatch.setenv("BUCKETSCRIBE_OBS_SERVER", aws)
    monkeypatch.setenv("BUCKETSCRIBE_OBS_REGION", "us-east-1")
    storage = cloud(Settings().cloud).storage()
    assert isinstance(storage, Selected)
    client("s3", aws).create_bucket(Bucket="via-settings")
    storage.put("via-settings", "k.txt", b"hello", content_type="text/plain")
    assert storage.get("via-settings", "k.txt") == b"hello"

"""The S3 adapter over the real wire: boto3 against moto server."""

import urllib.request
from pathlib import Path

import pytest

from bucketscribe.clouds.aws.storage import S3Storage
from tests.integration.conftest import client

pytestmark = pytest.mark.integration

KEY = "incoming/a b+c/ünï côde.wav"


@pytest.fixture
def storage(aws: str) -> S3Storage:
    s3 = client("s3", aws)
    s3.create_bucket(Bucket="recordings")
    return S3Storage(s3)


def test_head_get_put_and_ranged_read(storage: S3Storage, tmp_path: Path) -> None:
    storage.put("recordings", KEY, b"RIFF0123456789", content_type="audio/wav")
    info = storage.head("recordings", KEY)
    assert info.size == 14 and info.etag and info.content_type == "audio/wav"
    assert storage.read_head("recordings", KEY, 4) == b"RIFF"
    assert storage.get("recordings", KEY) == b"RIFF0123456789"
    assert storage.head("recordings", "missing.wav") is None
    storage.download("recordings", KEY, tmp_path / "x")
    assert (tmp_path / "x").read_bytes() == b"RIFF0123456789"
    storage.upload("recordings", "transcripts/y.ogg", tmp_path / "x", content_type="audio/ogg")
    assert storage.head("recordings", "transcripts/y.ogg").content_type == "audio/ogg"


def test_presigned_url_fetches_the_object_without_credentials(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket="recordings")
    storage = S3Storage(endpoint_url=aws)  # the production client: SigV4, path-style
    storage.put("recordings", KEY, b"audio bytes", content_type="audio/wav")
    url = storage.presign_get("recordings", KEY, expires_s=12 * 3600)
    assert "X-Amz-Signature=" in url and "X-Amz-Expires=43200" in url
    with urllib.request.urlopen(url) as response:
        assert response.read() == b"audio bytes"


def test_default_client_is_built_lazily_for_an_endpoint(aws: str) -> None:
    storage = S3Storage(endpoint_url=aws)
    client("s3", aws).create_bucket(Bucket="second-bucket")
    storage.put("second-bucket", "k", b"x", content_type="text/plain")
    assert storage.get("second-bucket", "k") == b"x"

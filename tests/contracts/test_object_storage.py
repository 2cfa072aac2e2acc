"""The object-storage port's contract: the in-memory fake, the folder fake and both cloud adapters
(S3 through boto3, OBS through esdk-obs-python with v4 signatures), each over its real wire (moto
server), pass the same behaviour tests. Each cloud adapter runs twice: as the local stack builds
it (its URLs signed by its own client on the endpoint) and as a deployed function builds it, its
URLs signed by the URL signer's key (``clouds/<cloud>/url_signing.py``): on S3 for the bucket's
regional host, found with GetBucketLocation, which the test's fetch sends to moto as DNS would.

What the pipeline relies on is spelled out per test: a key reaches the bucket unchanged, a head
says what a get would return, a single put's ETag is the MD5 of its bytes (``outputs.put_once``
skips outputs already written by comparing it), a ranged read never hands back more than asked,
and a presigned URL names its object in a way ``ports.provider.file_key`` can match.
"""

from __future__ import annotations

import hashlib
import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws.storage import S3Storage
from bucketscribe.clouds.aws.url_signing import RegionalUrlSigner, SignerKeySource, bucket_regions
from bucketscribe.clouds.huawei import url_signing as obs_url_signing
from bucketscribe.clouds.huawei.storage import ObsStorage
from bucketscribe.ports.provider import file_key
from bucketscribe.ports.storage import ObjectStorage
from tests.fakes import DiskStorage, InMemoryStorage
from tests.integration.conftest import client
from tests.presigned_urls import fetch_from, query, session_token, signature_matches

pytestmark = pytest.mark.integration

# Spaces, a plus and non-ASCII: what a URL-encoding slip in any layer would change.
KEY = "incoming/a b+c/ünï côde.wav"
BODY = b"RIFF0123456789 audio bytes"

ALL = ["memory", "disk", "s3", "obs", "s3-signer", "obs-signer"]
# The in-memory fake's URLs point at storage.invalid: the unit tests' providers never fetch them.
SERVES_URLS = ["disk", "s3", "obs", "s3-signer", "obs-signer"]
# Object versions are a bucket setting of the clouds; the fakes keep one body per key.
VERSIONED = ["s3", "obs", "s3-signer", "obs-signer"]
# Signed by the URL signer's long-term key, as in a deployed function.
SIGNED_BY_URL_SIGNER = ["s3-signer", "obs-signer"]
# Where the s3-signer's bucket lives: its URLs name this region's endpoint.
SIGNER_BUCKET_REGION = "eu-central-1"
# The URL signers' keys, as their secrets hold them; the functions' own keys are temporary.
S3_URL_SIGNER = ("AKIACONTRACTURLSIGNER", "contract-url-signer-secret")
OBS_URL_SIGNER = ("CONTRACTOBSURLSIGNER", "contract-obs-url-signer-sk")


@dataclass
class StorageUnderTest:
    name: str
    storage: ObjectStorage
    bucket: str
    turn_on_versions: Callable[[], None] | None = None
    # How a provider gets a URL's object: ``fetch`` unless the URL names a real cloud host.
    fetch: Callable[[str], bytes] | None = None
    # The URL signer's key (id, secret), where one signs the URLs.
    url_signer: tuple[str, str] | None = None

    def fetch_url(self, url: str) -> bytes:
        return (self.fetch or fetch)(url)


def fetch(url: str) -> bytes:
    """What a provider gets from a presigned URL: no credentials, only the URL (the folder fake's
    URL is a path, which PyAV opens like any URL)."""
    if url.startswith(("http://", "https://")):
        with urllib.request.urlopen(url, timeout=10) as response:
            return bytes(response.read())
    return Path(url).read_bytes()


def fetch_through(endpoint: str) -> Callable[[str], bytes]:
    """A provider's fetch of a URL on a real S3 host, sent to moto at ``endpoint`` instead (its
    path, query and Host header as written: what DNS and TLS would deliver to S3)."""

    def get(url: str) -> bytes:
        status, body = fetch_from(endpoint, url)
        if status != 200:
            raise OSError(f"GET {url.split('?')[0]} answered {status}")
        return body

    return get


class SecretsHolding:
    """A secret store holding one secret."""

    def __init__(self, name: str, value: str) -> None:
        self._values = {name: value}

    def get(self, name: str) -> str | None:
        return self._values.get(name)


@pytest.fixture(params=ALL)
def store(request: pytest.FixtureRequest, tmp_path: Path, unique_name: str) -> Iterator[StorageUnderTest]:
    if request.param == "memory":
        yield StorageUnderTest("memory", InMemoryStorage(), unique_name)
        return
    if request.param == "disk":
        yield StorageUnderTest("disk", DiskStorage(tmp_path / "buckets"), unique_name)
        return
    endpoint = request.getfixturevalue("moto_endpoint")
    s3 = client("s3", endpoint)
    if request.param == "s3-signer":
        location = {"LocationConstraint": SIGNER_BUCKET_REGION}
        s3.create_bucket(Bucket=unique_name, CreateBucketConfiguration=location)
    else:
        s3.create_bucket(Bucket=unique_name)

    def turn_on_versions() -> None:
        s3.put_bucket_versioning(Bucket=unique_name, VersioningConfiguration={"Status": "Enabled"})

    storage: ObjectStorage
    if request.param == "s3":
        # The production constructor: SigV4, path-style addressing for an endpoint.
        storage = S3Storage(endpoint_url=endpoint)
    elif request.param == "s3-signer":
        # As a deployed function: requests on the role's client (here the endpoint's), URLs signed
        # with the URL signer's key for the bucket's region, asked of S3 (moto) once.
        key_id, secret = S3_URL_SIGNER
        stored = json.dumps({"AccessKeyId": key_id, "SecretAccessKey": secret})
        signer = RegionalUrlSigner(
            bucket_regions(None, lookup_client=lambda: client("s3", endpoint)),
            SignerKeySource("url-signer", SecretsHolding("url-signer", stored)),
        )
        storage = S3Storage(endpoint_url=endpoint, url_signer=signer)
        yield StorageUnderTest(
            request.param, storage, unique_name, turn_on_versions, fetch_through(endpoint), S3_URL_SIGNER
        )
        return
    elif request.param == "obs-signer":
        # As a deployed function: requests with the agency's temporary key, URLs with the signer's.
        ak, sk = OBS_URL_SIGNER
        storage = ObsStorage(
            server=endpoint,
            access_key_id="AGENCYTEMPORARYAK",
            secret_access_key=SecretStr("agency-temporary-sk"),
            security_token=SecretStr("agency-security-token"),
            region="us-east-1",
            signature="v4",
            path_style=True,
            url_signing_key=obs_url_signing.SignerKeySource(
                "url-signer", SecretsHolding("url-signer", json.dumps({"ak": ak, "sk": sk}))
            ),
        )
        yield StorageUnderTest(
            request.param, storage, unique_name, turn_on_versions, url_signer=OBS_URL_SIGNER
        )
        return
    else:
        storage = ObsStorage(
            server=endpoint,
            access_key_id="t",
            secret_access_key=SecretStr("t"),
            region="us-east-1",
            signature="v4",
            path_style=True,
        )
    yield StorageUnderTest(request.param, storage, unique_name, turn_on_versions)


def test_a_put_object_reads_back_whole_by_range_and_by_its_head(store: StorageUnderTest) -> None:
    storage, bucket = store.storage, store.bucket
    storage.put(bucket, KEY, BODY, content_type="audio/wav")
    assert storage.get(bucket, KEY) == BODY
    assert storage.read_head(bucket, KEY, 4) == b"RIFF"
    assert storage.read_head(bucket, KEY, len(BODY) + 100) == BODY  # a range past the end: all there is
    info = storage.head(bucket, KEY)
    assert info is not None and info.size == len(BODY)


def test_the_content_type_given_is_the_one_the_head_reports(store: StorageUnderTest) -> None:
    """Outputs are served with the type they were written with (a browser opens a .vtt as text)."""
    store.storage.put(store.bucket, "transcripts/a.vtt", b"WEBVTT\n", content_type="text/vtt")
    info = store.storage.head(store.bucket, "transcripts/a.vtt")
    assert info is not None and info.content_type == "text/vtt"


def test_the_etag_of_a_single_put_is_the_md5_of_its_bytes(store: StorageUnderTest) -> None:
    """``outputs.put_once`` compares it with the MD5 of an output to skip writing it again."""
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    info = store.storage.head(store.bucket, KEY)
    assert info is not None and info.etag == hashlib.md5(BODY, usedforsecurity=False).hexdigest()


def test_a_new_body_under_the_same_key_is_a_new_revision(store: StorageUnderTest) -> None:
    """An upload's identity is its key and ETag (or version): a re-upload must get a job of its own."""
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    first = store.storage.head(store.bucket, KEY)
    store.storage.put(store.bucket, KEY, BODY + b" again", content_type="audio/wav")
    second = store.storage.head(store.bucket, KEY)
    assert first is not None and second is not None
    assert (first.etag, first.version_id) != (second.etag, second.version_id)
    assert store.storage.get(store.bucket, KEY) == BODY + b" again"


def test_the_key_is_used_as_given_never_decoded_again(store: StorageUnderTest) -> None:
    """Event keys are URL-decoded once, on the way in; a layer that decoded (or encoded) them again
    would read another object, or none."""
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    encoded = urllib.parse.quote(KEY)
    plus_as_space = KEY.replace("+", " ")
    assert store.storage.head(store.bucket, encoded) is None
    assert store.storage.head(store.bucket, plus_as_space) is None
    store.storage.put(store.bucket, plus_as_space, b"another object", content_type="audio/wav")
    assert store.storage.get(store.bucket, KEY) == BODY


def test_a_missing_object_has_no_head_and_cannot_be_read(store: StorageUnderTest, tmp_path: Path) -> None:
    storage, bucket = store.storage, store.bucket
    assert storage.head(bucket, "incoming/missing.wav") is None
    with pytest.raises(Exception):  # each store raises its own error; none answers with bytes
        storage.get(bucket, "incoming/missing.wav")
    dest = tmp_path / "downloads" / "never.wav"
    dest.parent.mkdir()
    with pytest.raises(Exception):
        storage.download(bucket, "incoming/missing.wav", dest)
    assert list(dest.parent.iterdir()) == []  # neither the file nor a partial one


def test_files_go_up_and_come_down_whole(store: StorageUnderTest, tmp_path: Path) -> None:
    """Long recordings and the audio made for a provider pass through files, never whole in memory."""
    source = tmp_path / "made.ogg"
    source.write_bytes(bytes(range(256)) * 40)
    store.storage.upload(store.bucket, "transcripts/made.ogg", source, content_type="audio/ogg")
    info = store.storage.head(store.bucket, "transcripts/made.ogg")
    assert info is not None and info.size == 10_240 and info.content_type == "audio/ogg"
    dest = tmp_path / "back.ogg"
    store.storage.download(store.bucket, "transcripts/made.ogg", dest)
    assert dest.read_bytes() == source.read_bytes()


def test_delete_removes_the_object_and_an_absent_one_is_fine(store: StorageUnderTest) -> None:
    store.storage.put(store.bucket, "transcripts/a.error.json", b"{}", content_type="application/json")
    store.storage.delete(store.bucket, "transcripts/a.error.json")
    assert store.storage.head(store.bucket, "transcripts/a.error.json") is None
    store.storage.delete(store.bucket, "transcripts/a.error.json")  # a stale report already gone


@pytest.mark.parametrize(
    "store",
    [
        "memory",
        "disk",
        "s3",
        "obs",
        "s3-signer",
        "obs-signer",
    ],
    indirect=True,
)
def test_the_first_bytes_of_an_empty_object_are_none(store: StorageUnderTest) -> None:
    store.storage.put(store.bucket, "incoming/empty.wav", b"", content_type="audio/wav")
    assert store.storage.read_head(store.bucket, "incoming/empty.wav", 4) == b""


@pytest.mark.parametrize(
    "store",
    [
        "memory",
        "disk",
        "s3",
        "obs",
        "s3-signer",
        "obs-signer",
    ],
    indirect=True,
)
def test_a_ranged_read_never_returns_more_than_asked(store: StorageUnderTest) -> None:
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    assert [len(store.storage.read_head(store.bucket, KEY, n)) for n in (0, 1, 12)] == [0, 1, 12]


def test_a_presigned_url_names_its_object(store: StorageUnderTest) -> None:
    """Providers echo the URLs they were given (DashScope per file of a task): ``file_key`` must tell
    two objects apart and see one object the same however often it is signed."""
    storage, bucket = store.storage, store.bucket
    for key in (KEY, "incoming/other.wav"):
        storage.put(bucket, key, BODY, content_type="audio/wav")
    first = storage.presign_get(bucket, KEY, expires_s=600)
    again = storage.presign_get(bucket, KEY, expires_s=3600)
    other = storage.presign_get(bucket, "incoming/other.wav", expires_s=600)
    assert file_key(first) == file_key(again) != file_key(other)


@pytest.mark.parametrize("store", SERVES_URLS, indirect=True)
def test_a_presigned_url_serves_the_object_without_credentials(store: StorageUnderTest) -> None:
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    assert store.fetch_url(store.storage.presign_get(store.bucket, KEY, expires_s=12 * 3600)) == BODY


@pytest.mark.parametrize("store", SIGNED_BY_URL_SIGNER, indirect=True)
def test_a_url_signer_url_names_its_key_and_no_session(store: StorageUnderTest) -> None:
    """A deployed function's URL is signed with the URL signer's long-term key, not the function's
    temporary one: no session token rides in it, so it lives as long as its own expiry says."""
    assert store.url_signer is not None
    key_id, secret = store.url_signer
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    url = store.storage.presign_get(store.bucket, KEY, expires_s=12 * 3600)
    assert session_token(url) is None
    assert query(url)["X-Amz-Credential"].startswith(f"{key_id}/")
    assert query(url)["X-Amz-Expires"] == str(12 * 3600)
    assert signature_matches(url, secret)
    assert store.fetch_url(url) == BODY


@pytest.mark.parametrize("store", ["s3-signer"], indirect=True)
def test_a_deployed_s3_url_names_the_regional_host_its_bucket_location_gives(store: StorageUnderTest) -> None:
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    url = store.storage.presign_get(store.bucket, KEY, expires_s=600)
    host = urllib.parse.urlsplit(url).netloc
    assert url.startswith("https://") and host == f"{store.bucket}.s3.{SIGNER_BUCKET_REGION}.amazonaws.com"


def test_an_unversioned_bucket_reports_no_version(store: StorageUnderTest) -> None:
    """A version id is an upload's identity where there is one: none must be made up."""
    store.storage.put(store.bucket, KEY, BODY, content_type="audio/wav")
    info = store.storage.head(store.bucket, KEY)
    assert info is not None and info.version_id is None


@pytest.mark.parametrize("store", VERSIONED, indirect=True)
def test_a_versioned_url_serves_that_version_after_the_key_is_overwritten(store: StorageUnderTest) -> None:
    """A provider fetches a job's upload long after it was submitted: a replacement of the key in
    the meantime must not be what it transcribes."""
    assert store.turn_on_versions is not None
    store.turn_on_versions()
    store.storage.put(store.bucket, KEY, b"first recording", content_type="audio/wav")
    first = store.storage.head(store.bucket, KEY)
    assert first is not None and first.version_id
    url = store.storage.presign_get(store.bucket, KEY, expires_s=600, version_id=first.version_id)
    store.storage.put(store.bucket, KEY, b"its replacement", content_type="audio/wav")
    second = store.storage.head(store.bucket, KEY)
    assert second is not None and second.version_id not in (None, first.version_id)
    # The version is part of what names the file: another version is another file to a provider.
    assert file_key(url).endswith(f"?versionId={first.version_id}")
    assert store.fetch_url(url) == b"first recording"
    assert store.storage.get(store.bucket, KEY) == b"its replacement"

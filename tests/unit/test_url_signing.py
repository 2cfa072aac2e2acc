"""Media URLs a provider can fetch from outside the cloud, hours later (issue 18, item 3).

The host: each bucket's regional endpoint, virtual-hosted, for every form of region (us-east-1,
an ordinary region, an opt-in region) on S3, and for OBS's regions; never S3's global host, which
redirects, and a redirected SigV4 URL fails.

The key: the URL signer's long-term key, so a URL lasts the presign expiry, not the function's
session; without a signer, the session's URL and a warning, once. No signing secret reaches a log
line or an error. Everything here signs offline (no request is made); what S3 and OBS would accept
is checked by recomputing the signature (``tests/presigned_urls.py``).
"""

from __future__ import annotations

import io
import json
import logging
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws.url_signing import (
    BucketRegions,
    RegionalUrlSigner,
    SignerKeySource,
    bucket_regions,
    region_of_location,
)
from bucketscribe.clouds.huawei import url_signing as obs_url_signing
from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.clouds.huawei.storage import ObsStorage
from bucketscribe.domain.redaction import redact
from bucketscribe.observability import logger as service_logger
from bucketscribe.ports.secrets import MissingSecret
from tests.presigned_urls import accepted_at, query, session_token, signature_matches, signed_at, valid_until

pytestmark = pytest.mark.unit

KEY = "incoming/a b+c/ünï côde.wav"
TWELVE_HOURS = 12 * 3600
# What SIS promises (a result within 6 h) and the shortest session a function's role may have.
SIS_WINDOW = timedelta(hours=6)
SHORTEST_SESSION = timedelta(hours=1)

AWS_SIGNER_ID = "AKIAURLSIGNER0EXAMPLE"
AWS_SIGNER_SECRET = "url-signer-secret-0123456789abcdef"
AWS_SIGNER = json.dumps(
    {"UserName": "url-signer", "AccessKeyId": AWS_SIGNER_ID, "SecretAccessKey": AWS_SIGNER_SECRET}
)
ROLE_ID, ROLE_SECRET, ROLE_TOKEN = (
    "ASIAROLESESSION0EXAMPLE",
    "role-session-secret-0123",
    "role-session-token-IQoJ",
)

OBS_SIGNER = HuaweiCredentials(ak="OBSURLSIGNERAK", sk=SecretStr("obs-url-signer-sk-0123456789"))
AGENCY = HuaweiCredentials(
    ak="AGENCYTEMPAK", sk=SecretStr("agency-temp-sk-0123456789"), security_token=SecretStr("agency-token-xyz")
)


class Secrets:
    """A secret store holding what a test puts in it, counting reads."""

    def __init__(self, **values: str) -> None:
        self.values = dict(values)
        self.reads = 0

    def get(self, name: str) -> str | None:
        self.reads += 1
        return self.values.get(name)


@pytest.fixture(autouse=True)
def _credentials_read_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    """boto3's default session keeps the credentials it first found; each test sets its own."""
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


@pytest.fixture
def role_session(monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's own credentials are a role session, as Lambda's environment gives them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ROLE_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ROLE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", ROLE_TOKEN)


@pytest.fixture
def logs() -> Iterator[Callable[[], str]]:
    """What the service logger writes, formatted as it formats every line (Powertools' JSON,
    redacted): a handler of our own beside its stdout one, which holds the stream it was made with."""
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    handler.setFormatter(service_logger.registered_formatter)
    service = logging.getLogger(service_logger.name)
    service.addHandler(handler)
    try:
        yield written.getvalue
    finally:
        service.removeHandler(handler)


def s3_signer(regions: dict[str, str], secrets: Secrets | None = None) -> RegionalUrlSigner:
    def never_asked(bucket: str) -> str:
        raise AssertionError(f"the region of {bucket} was given; it must not be looked up")

    store = secrets if secrets is not None else Secrets(signer=AWS_SIGNER)
    return RegionalUrlSigner(BucketRegions(regions, never_asked), SignerKeySource("signer", store))


def host_and_key(url: str) -> tuple[str, str, str]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.netloc, urllib.parse.unquote(parts.path)


# -- S3: the host ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",  # where boto3 defaults to the global host, which never redirects there
        "eu-central-1",  # an ordinary region: the global host answers 307 while DNS settles
        "ap-east-1",  # opt-in regions: the global host never serves their buckets
        "me-south-1",
    ],
)
def test_an_s3_url_names_the_buckets_regional_endpoint_virtual_hosted(region: str) -> None:
    url = s3_signer({"recordings": region}).presign_get("recordings", KEY, expires_s=TWELVE_HOURS)
    assert host_and_key(url) == ("https", f"recordings.s3.{region}.amazonaws.com", f"/{KEY}")
    # The signature's scope names the same region: S3 refuses a region that is not the bucket's.
    assert query(url)["X-Amz-Credential"].split("/")[2:4] == [region, "s3"]


def test_a_bucket_name_with_dots_stays_on_the_regional_endpoint_path_style() -> None:
    """TLS's wildcard certificate cannot cover a dotted name as a host: the bucket goes in the path."""
    url = s3_signer({"my.recordings": "eu-central-1"}).presign_get("my.recordings", KEY, expires_s=600)
    assert host_and_key(url) == ("https", "s3.eu-central-1.amazonaws.com", f"/my.recordings/{KEY}")


def test_a_pinned_version_rides_in_the_url() -> None:
    signer = s3_signer({"recordings": "eu-central-1"})
    url = signer.presign_get("recordings", KEY, expires_s=600, version_id="3HL4kqtJlcpXroDTDmJ")
    assert query(url)["versionId"] == "3HL4kqtJlcpXroDTDmJ"


@pytest.mark.parametrize(
    ("answer", "region"),
    [(None, "us-east-1"), ("", "us-east-1"), ("EU", "eu-west-1"), ("ap-east-1", "ap-east-1")],
)
def test_get_bucket_location_answers_are_regions(answer: str | None, region: str) -> None:
    assert region_of_location(answer) == region


class LocationClient:
    """GetBucketLocation as S3 answers it, counted."""

    def __init__(self, locations: dict[str, str | None]) -> None:
        self.locations = locations
        self.asked: list[str] = []

    def get_bucket_location(self, Bucket: str) -> dict[str, Any]:
        self.asked.append(Bucket)
        return {"LocationConstraint": self.locations[Bucket]}


def test_the_stacks_own_bucket_is_never_looked_up_and_another_only_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")  # Lambda's: the stack's region
    lookups = LocationClient({"elsewhere": "ap-east-1", "legacy": None})
    regions = bucket_regions("recordings", lookup_client=lambda: lookups)  # type: ignore[arg-type, return-value]
    signer = RegionalUrlSigner(regions, SignerKeySource("signer", Secrets(signer=AWS_SIGNER)))
    hosts = [
        host_and_key(signer.presign_get(bucket, KEY, expires_s=600))[1]
        for bucket in ("recordings", "recordings", "elsewhere", "elsewhere", "legacy", "elsewhere")
    ]
    assert hosts == [
        "recordings.s3.eu-central-1.amazonaws.com",
        "recordings.s3.eu-central-1.amazonaws.com",
        "elsewhere.s3.ap-east-1.amazonaws.com",
        "elsewhere.s3.ap-east-1.amazonaws.com",
        "legacy.s3.us-east-1.amazonaws.com",
        "elsewhere.s3.ap-east-1.amazonaws.com",
    ]
    assert lookups.asked == ["elsewhere", "legacy"]  # once per foreign bucket, never the stack's own


def test_presigns_side_by_side_look_a_foreign_bucket_up_once() -> None:
    """Jobs are submitted by several threads at once; their first presign of a bucket asks once."""
    asked: list[str] = []
    started = threading.Semaphore(0)
    all_started = threading.Event()

    def slow_lookup(bucket: str) -> str:
        asked.append(bucket)
        # The lookup lasts until every thread has set out to presign: they all find it in flight.
        assert all_started.wait(timeout=30)
        return "ap-east-1"

    signer = RegionalUrlSigner(
        BucketRegions({}, slow_lookup), SignerKeySource("signer", Secrets(signer=AWS_SIGNER))
    )

    def presign(n: int) -> str:
        started.release()
        return signer.presign_get("elsewhere", f"incoming/{n}.wav", expires_s=600)

    with ThreadPoolExecutor(max_workers=8) as pool:
        pending = [pool.submit(presign, n) for n in range(8)]
        for _ in range(8):
            assert started.acquire(timeout=30)
        all_started.set()
        urls = [future.result(timeout=30) for future in pending]
    assert {host_and_key(url)[1] for url in urls} == {"elsewhere.s3.ap-east-1.amazonaws.com"}
    assert asked == ["elsewhere"]


# -- S3: the key ----------------------------------------------------------------------------------


def test_a_signer_url_lasts_the_presign_expiry_after_the_roles_session_has_ended(
    role_session: None, logs: Callable[[], str]
) -> None:
    secrets = Secrets(signer=AWS_SIGNER)
    url = s3_signer({"recordings": "eu-central-1"}, secrets).presign_get(
        "recordings", KEY, expires_s=TWELVE_HOURS
    )
    # Signed with the signer's long-term key, not the session the function runs in: no token ties
    # the URL to a session, and the only expiry it carries is the presign expiry.
    assert session_token(url) is None
    assert query(url)["X-Amz-Credential"].startswith(f"{AWS_SIGNER_ID}/")
    assert signature_matches(url, AWS_SIGNER_SECRET)
    assert valid_until(url) - signed_at(url) == timedelta(seconds=TWELVE_HOURS)
    # So when SIS fetches it at the end of its 6 h, after a role session that began with the
    # signing has long ended, S3 serves it.
    session_ends = signed_at(url) + SHORTEST_SESSION
    fetched = signed_at(url) + SIS_WINDOW
    assert accepted_at(url, fetched, secret_access_key=AWS_SIGNER_SECRET, session_ends=session_ends)
    assert not accepted_at(url, valid_until(url), secret_access_key=AWS_SIGNER_SECRET)
    assert "Media URLs are signed with the function role" not in logs()


def test_without_a_signer_the_roles_session_signs_and_says_so_once(
    role_session: None, logs: Callable[[], str]
) -> None:
    signer = s3_signer({"recordings": "eu-central-1"}, Secrets())  # the secret holds no key yet
    url = signer.presign_get("recordings", KEY, expires_s=TWELVE_HOURS)
    again = signer.presign_get("recordings", "incoming/other.wav", expires_s=TWELVE_HOURS)
    assert session_token(url) == ROLE_TOKEN and query(url)["X-Amz-Credential"].startswith(f"{ROLE_ID}/")
    assert host_and_key(again)[1] == "recordings.s3.eu-central-1.amazonaws.com"
    # Its own expiry says 12 h, but it dies with the session, before SIS's 6 h are up.
    session_ends = signed_at(url) + SHORTEST_SESSION
    fetched = signed_at(url) + SIS_WINDOW
    assert valid_until(url) > fetched
    assert not accepted_at(url, fetched, secret_access_key=ROLE_SECRET, session_ends=session_ends)
    printed = logs()
    assert printed.count("Media URLs are signed with the function role's temporary session") == 1
    assert "the URL signer's secret 'signer' holds no key yet" in printed
    assert ROLE_TOKEN not in printed and ROLE_SECRET not in printed


def test_without_the_setting_the_warning_names_the_setting(
    role_session: None, logs: Callable[[], str]
) -> None:
    regions = BucketRegions({"recordings": "eu-central-1"}, lambda bucket: "unused")
    signer = RegionalUrlSigner(regions, SignerKeySource(None, Secrets()))
    assert session_token(signer.presign_get("recordings", KEY, expires_s=600)) == ROLE_TOKEN
    assert "BUCKETSCRIBE_URL_SIGNER_SECRET_NAME is not set" in logs()


def test_a_long_term_key_of_the_function_signs_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, logs: Callable[[], str]
) -> None:
    """A laptop's long-term key does not expire: nothing to warn about."""
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    url = s3_signer({"recordings": "eu-central-1"}, Secrets()).presign_get("recordings", KEY, expires_s=600)
    assert session_token(url) is None
    assert "Media URLs are signed" not in logs()


def test_a_rotated_key_signs_the_next_url_and_the_secret_is_read_per_presign(role_session: None) -> None:
    secrets = Secrets(signer=AWS_SIGNER)
    signer = s3_signer({"recordings": "eu-central-1"}, secrets)
    first = signer.presign_get("recordings", KEY, expires_s=600)
    secrets.values["signer"] = json.dumps(
        {"AccessKeyId": "AKIAROTATEDKEY", "SecretAccessKey": "rotated-secret"}
    )
    second = signer.presign_get("recordings", KEY, expires_s=600)
    assert query(first)["X-Amz-Credential"].startswith(f"{AWS_SIGNER_ID}/")
    assert query(second)["X-Amz-Credential"].startswith("AKIAROTATEDKEY/")
    assert signature_matches(second, "rotated-secret")
    # The store is asked each time; Secrets Manager's store caches (ports.secrets: 5 minutes).
    assert secrets.reads == 2


@pytest.mark.parametrize(
    "stored",
    [
        "AKIAURLSIGNER0EXAMPLE:url-signer-secret-0123456789abcdef",
        json.dumps({"AccessKeyId": AWS_SIGNER_ID}),
        json.dumps({"access_key_id": AWS_SIGNER_ID, "secret": AWS_SIGNER_SECRET}),
    ],
)
def test_a_malformed_signer_secret_is_refused_without_its_value(stored: str) -> None:
    signer = s3_signer({"recordings": "eu-central-1"}, Secrets(signer=stored))
    with pytest.raises(MissingSecret) as refused:
        signer.presign_get("recordings", KEY, expires_s=600)
    message = str(refused.value)
    assert "AccessKeyId and SecretAccessKey" in message and "'signer'" in message
    assert AWS_SIGNER_SECRET not in message and AWS_SIGNER_ID not in message


def test_a_signer_url_in_an_error_or_log_line_loses_its_credentials() -> None:
    url = s3_signer({"recordings": "eu-central-1"}).presign_get("recordings", KEY, expires_s=600)
    text = redact(f"SIS.0032 data url is invalid: {url}")
    assert AWS_SIGNER_ID not in text and query(url)["X-Amz-Signature"] not in text
    assert "https://recordings.s3.eu-central-1.amazonaws.com/" in text


# -- OBS ------------------------------------------------------------------------------------------


def obs_storage(region: str, secrets: Secrets, *, agency: HuaweiCredentials = AGENCY) -> ObsStorage:
    """The OBS adapter as the Huawei cloud builds it: the agency's key for requests, the URL signer's
    key from the secret store for URLs, and the region's default endpoint."""
    return ObsStorage(
        region=region,
        credentials=lambda: agency,
        url_signing_key=obs_url_signing.SignerKeySource("signer", secrets),
    )


def obs_signer_secret(key: HuaweiCredentials = OBS_SIGNER) -> str:
    return json.dumps({"ak": key.ak, "sk": key.sk.get_secret_value()})


@pytest.mark.parametrize("region", ["cn-north-4", "cn-east-3", "ap-southeast-1"])
def test_an_obs_url_names_the_buckets_regional_endpoint_virtual_hosted(region: str) -> None:
    storage = obs_storage(region, Secrets(signer=obs_signer_secret()))
    url = storage.presign_get("recordings", KEY, expires_s=TWELVE_HOURS, version_id="G001")
    assert host_and_key(url) == ("https", f"recordings.obs.{region}.myhuaweicloud.com", f"/{KEY}")
    assert query(url)["X-Amz-Credential"].split("/")[2] == region
    assert query(url)["versionId"] == "G001"


def test_an_obs_signer_url_lasts_the_presign_expiry_after_the_agency_key_has_expired(
    logs: Callable[[], str],
) -> None:
    storage = obs_storage("cn-north-4", Secrets(signer=obs_signer_secret()))
    url = storage.presign_get("recordings", KEY, expires_s=TWELVE_HOURS)
    assert session_token(url) is None
    assert query(url)["X-Amz-Credential"].startswith(f"{OBS_SIGNER.ak}/")
    assert signature_matches(url, OBS_SIGNER.sk.get_secret_value())
    assert valid_until(url) - signed_at(url) == timedelta(seconds=TWELVE_HOURS)
    # An agency key handed over late in its 24 h may have an hour left when the URL is signed.
    agency_key_ends = signed_at(url) + SHORTEST_SESSION
    fetched = signed_at(url) + SIS_WINDOW
    secret = OBS_SIGNER.sk.get_secret_value()
    assert accepted_at(url, fetched, secret_access_key=secret, session_ends=agency_key_ends)
    assert "Media URLs are signed" not in logs()


@pytest.mark.parametrize("stored", [None, "{}"], ids=["no secret value", "Terraform's placeholder"])
def test_without_an_obs_signer_key_the_agency_signs_and_says_so_once(
    stored: str | None, logs: Callable[[], str]
) -> None:
    storage = obs_storage("cn-north-4", Secrets(**({"signer": stored} if stored else {})))
    url = storage.presign_get("recordings", KEY, expires_s=TWELVE_HOURS)
    storage.presign_get("recordings", "incoming/other.wav", expires_s=TWELVE_HOURS)
    assert session_token(url) == "agency-token-xyz"
    fetched, agency_key_ends = signed_at(url) + SIS_WINDOW, signed_at(url) + SHORTEST_SESSION
    secret = AGENCY.sk.get_secret_value()
    assert not accepted_at(url, fetched, secret_access_key=secret, session_ends=agency_key_ends)
    printed = logs()
    assert printed.count("Media URLs are signed with the function agency's temporary key") == 1
    assert "agency-token-xyz" not in printed and secret not in printed


def test_a_rotated_obs_signer_key_signs_the_next_url() -> None:
    secrets = Secrets(signer=obs_signer_secret())
    storage = obs_storage("cn-north-4", secrets)
    first = storage.presign_get("recordings", KEY, expires_s=600)
    rotated = HuaweiCredentials(ak="ROTATEDSIGNERAK", sk=SecretStr("rotated-signer-sk"))
    secrets.values["signer"] = obs_signer_secret(rotated)
    second = storage.presign_get("recordings", KEY, expires_s=600)
    assert query(first)["X-Amz-Credential"].startswith(f"{OBS_SIGNER.ak}/")
    assert query(second)["X-Amz-Credential"].startswith("ROTATEDSIGNERAK/")
    assert signature_matches(second, "rotated-signer-sk")


def test_a_malformed_obs_signer_secret_is_refused_without_its_value() -> None:
    stored = json.dumps({"ak": OBS_SIGNER.ak})  # no sk
    storage = obs_storage("cn-north-4", Secrets(signer=stored))
    with pytest.raises(MissingSecret) as refused:
        storage.presign_get("recordings", KEY, expires_s=600)
    assert '"ak": ..., "sk": ...' in str(refused.value) and OBS_SIGNER.ak not in str(refused.value)

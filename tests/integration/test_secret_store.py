"""Both secret stores over their real wires.

CSMS: our ``CsmsSecretStore`` (the real ``huaweicloudsdkcsms`` inside) against a CSMS-compatible
endpoint that verifies the SDK's AK/SK signature and the agency's security token. AWS: the
Powertools path against moto's Secrets Manager.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import boto3
import pytest
from huaweicloudsdkcore.exceptions.exceptions import ClientRequestException
from pydantic import SecretStr

from bucketscribe.clouds.aws.secrets import AwsSecretsManager
from bucketscribe.clouds.huawei.credentials import AgencyCredentials, HuaweiCredentials
from bucketscribe.clouds.huawei.secrets import CsmsSecretStore
from bucketscribe.clouds.registry import cloud
from bucketscribe.ports.secrets import MissingSecret, resolve_json_secret, resolve_secret
from bucketscribe.settings import Settings
from tests.integration.csms_emulator import CsmsEmulator

pytestmark = pytest.mark.integration

PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY_KEY = HuaweiCredentials(
    ak="TEMPAGENCYAK0001", sk=SecretStr("agency-secret-1"), security_token=SecretStr("token-1")
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def agency_context(credentials: HuaweiCredentials) -> SimpleNamespace:
    """What FunctionGraph passes a handler: the agency's temporary key behind getter methods."""
    token = credentials.security_token
    assert token is not None
    return SimpleNamespace(
        getSecurityAccessKey=lambda: credentials.ak,
        getSecuritySecretKey=lambda: credentials.sk.get_secret_value(),
        getSecurityToken=lambda: token.get_secret_value(),
    )


@pytest.fixture
def csms() -> Iterator[CsmsEmulator]:
    with CsmsEmulator(project_id=PROJECT, credentials=AGENCY_KEY) as emulator:
        emulator.put_secret("bucketscribe-callback", "callback-key-v1")
        emulator.put_secret("bucketscribe-sis", '{"ak": "SISAK", "sk": "SISSK"}')
        yield emulator


@pytest.fixture
def agency() -> AgencyCredentials:
    credentials = AgencyCredentials()
    credentials.remember(HuaweiCredentials.from_context(agency_context(AGENCY_KEY)))
    return credentials


def store_for(csms: CsmsEmulator, agency: AgencyCredentials, clock: Clock | None = None) -> CsmsSecretStore:
    return CsmsSecretStore(
        project_id=PROJECT, endpoint=csms.url, credentials=agency.current, clock=clock or Clock()
    )


def test_a_secret_is_read_with_the_agency_key_from_the_function_context(
    csms: CsmsEmulator, agency: AgencyCredentials
) -> None:
    store = store_for(csms, agency)
    assert resolve_secret(None, "bucketscribe-callback", what="the callback secret", store=store) == (
        "callback-key-v1"
    )
    assert resolve_json_secret("bucketscribe-sis", what="SIS credentials", store=store) == {
        "ak": "SISAK",
        "sk": "SISSK",
    }
    assert csms.reads == {"bucketscribe-callback": 1, "bucketscribe-sis": 1}
    assert not csms.refused


def test_values_are_cached_for_five_minutes_then_a_rotation_shows(
    csms: CsmsEmulator, agency: AgencyCredentials
) -> None:
    clock = Clock()
    store = store_for(csms, agency, clock)
    assert store.get("bucketscribe-callback") == "callback-key-v1"
    csms.put_secret("bucketscribe-callback", "callback-key-v2")
    clock.now += 299
    assert store.get("bucketscribe-callback") == "callback-key-v1"
    assert csms.reads["bucketscribe-callback"] == 1
    clock.now += 1
    assert store.get("bucketscribe-callback") == "callback-key-v2"
    assert csms.reads["bucketscribe-callback"] == 2


def test_an_unknown_secret_is_missing_not_empty(csms: CsmsEmulator, agency: AgencyCredentials) -> None:
    store = store_for(csms, agency)
    assert store.get("no-such-secret") is None
    with pytest.raises(MissingSecret, match="the push token is not configured"):
        resolve_secret(None, "no-such-secret", what="the push token", store=store)


def test_a_value_in_the_environment_wins_without_a_store_call(
    csms: CsmsEmulator, agency: AgencyCredentials
) -> None:
    store = store_for(csms, agency)
    assert resolve_secret(SecretStr("direct"), "bucketscribe-callback", what="x", store=store) == "direct"
    assert csms.reads == {}


@pytest.mark.parametrize(
    "forged",
    [
        HuaweiCredentials(ak=AGENCY_KEY.ak, sk=SecretStr("wrong"), security_token=AGENCY_KEY.security_token),
        HuaweiCredentials(ak=AGENCY_KEY.ak, sk=AGENCY_KEY.sk, security_token=SecretStr("stolen")),
        HuaweiCredentials(ak=AGENCY_KEY.ak, sk=AGENCY_KEY.sk),
    ],
    ids=["wrong-secret-key", "wrong-token", "no-token"],
)
def test_a_bad_signature_or_token_is_refused(csms: CsmsEmulator, forged: HuaweiCredentials) -> None:
    store = CsmsSecretStore(project_id=PROJECT, endpoint=csms.url, credentials=lambda: forged)
    with pytest.raises(ClientRequestException) as caught:
        store.get("bucketscribe-callback")
    assert caught.value.status_code == 401
    assert csms.reads == {} and sum(csms.refused.values()) == 1


def test_a_renewed_agency_key_is_picked_up_by_a_warm_instance(
    csms: CsmsEmulator, agency: AgencyCredentials
) -> None:
    clock = Clock()
    store = store_for(csms, agency, clock)
    assert store.get("bucketscribe-callback") == "callback-key-v1"
    renewed = HuaweiCredentials(
        ak="TEMPAGENCYAK0002", sk=SecretStr("agency-secret-2"), security_token=SecretStr("t2")
    )
    csms.keys.issue(renewed)
    csms.keys.revoke(AGENCY_KEY.ak)
    agency.remember(HuaweiCredentials.from_context(agency_context(renewed)))
    clock.now += 300
    assert store.get("bucketscribe-callback") == "callback-key-v1"
    assert csms.reads["bucketscribe-callback"] == 2 and not csms.refused


def test_settings_select_csms_with_the_function_project(
    csms: CsmsEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNTIME_PROJECT_ID", PROJECT)
    monkeypatch.setenv("HUAWEICLOUD_SDK_AK", AGENCY_KEY.ak)
    monkeypatch.setenv("HUAWEICLOUD_SDK_SK", AGENCY_KEY.sk.get_secret_value())
    monkeypatch.setenv("HUAWEICLOUD_SDK_SECURITY_TOKEN", "token-1")
    monkeypatch.setenv("BUCKETSCRIBE_CSMS_ENDPOINT", csms.url)
    store = cloud("huawei").secret_store()
    assert isinstance(store, CsmsSecretStore)
    assert store.get("bucketscribe-callback") == "callback-key-v1"


def test_csms_without_a_project_is_refused_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RUNTIME_PROJECT_ID", "HUAWEICLOUD_SDK_PROJECT_ID", "BUCKETSCRIBE_CSMS_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSecret, match="BUCKETSCRIBE_CSMS_PROJECT_ID"):
        cloud("huawei").secret_store()


def test_no_credentials_anywhere_is_a_missing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HUAWEICLOUD_SDK_AK", "HUAWEICLOUD_SDK_SK"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(MissingSecret, match="agency"):
        AgencyCredentials().current()


def test_aws_secrets_manager_through_powertools(aws: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from aws_lambda_powertools.utilities.parameters import base

    monkeypatch.setenv("AWS_ENDPOINT_URL", aws)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "t")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "t")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # Powertools keeps one provider (and boto3 client) per process: start from none.
    monkeypatch.setattr(base, "DEFAULT_PROVIDERS", {})
    secrets_manager = boto3.client("secretsmanager", endpoint_url=aws)
    arn = secrets_manager.create_secret(Name="bucketscribe-push", SecretString="push-v1")["ARN"]
    store = cloud(Settings().cloud).secret_store()
    assert isinstance(store, AwsSecretsManager)
    assert resolve_secret(None, arn, what="the push token", store=store) == "push-v1"

"""The secret-store port's contract: a secret the store holds reads as its value; a name it holds
no value for reads as ``None``, so that ``resolve_secret`` refuses to run with ``MissingSecret``
(naming what is missing) rather than with an empty key or a store-specific error.

Implementations: AWS Secrets Manager through Powertools (moto server), Huawei CSMS through its SDK
(the CSMS emulator, which checks the agency's signature), and ``NoSecretStore``, the store of a
deployment that gives every secret directly: it holds nothing, so only the tests of what a store
does *not* hold apply to it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import boto3
import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws.secrets import AwsSecretsManager
from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.clouds.huawei.secrets import CsmsSecretStore
from bucketscribe.ports.secrets import (
    MissingSecret,
    NoSecretStore,
    SecretStore,
    resolve_json_secret,
    resolve_secret,
)
from tests.integration.csms_emulator import CsmsEmulator

pytestmark = pytest.mark.integration

PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY = HuaweiCredentials(
    ak="CONTRACTAGENCYAK", sk=SecretStr("agency-sk"), security_token=SecretStr("token")
)


@dataclass
class SecretsUnderTest:
    store: SecretStore
    # Stores a value under a name (None: the store holds nothing, by design).
    put: Callable[[str, str], None] | None
    # Makes a name the store knows but holds no value for.
    put_without_value: Callable[[str], None] | None


@pytest.fixture(scope="module")
def csms() -> Iterator[CsmsEmulator]:
    with CsmsEmulator(project_id=PROJECT, credentials=AGENCY) as emulator:
        yield emulator


def aws_secrets(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> SecretsUnderTest:
    from aws_lambda_powertools.utilities.parameters import base

    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    # Powertools keeps one provider (and boto3 client) per process: this test's is made afresh.
    monkeypatch.setattr(base, "DEFAULT_PROVIDERS", {})
    secrets_manager = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")

    def put(name: str, value: str) -> None:
        secrets_manager.create_secret(Name=name, SecretString=value)

    def put_without_value(name: str) -> None:
        # Secrets Manager refuses an empty SecretString; a secret with no version holds no value.
        secrets_manager.create_secret(Name=name)

    return SecretsUnderTest(AwsSecretsManager(), put, put_without_value)


def csms_secrets(emulator: CsmsEmulator) -> SecretsUnderTest:
    store = CsmsSecretStore(project_id=PROJECT, endpoint=emulator.url, credentials=lambda: AGENCY)
    return SecretsUnderTest(store, emulator.put_secret, lambda name: emulator.put_secret(name, ""))


@pytest.fixture
def secrets(request: pytest.FixtureRequest) -> SecretsUnderTest:
    if request.param == "aws":
        return aws_secrets(request.getfixturevalue("moto_endpoint"), request.getfixturevalue("monkeypatch"))
    if request.param == "csms":
        return csms_secrets(request.getfixturevalue("csms"))
    return SecretsUnderTest(NoSecretStore(), None, None)


HOLDING = ["aws", "csms"]


@pytest.mark.parametrize("secrets", HOLDING, indirect=True)
def test_a_secret_the_store_holds_reads_as_its_value(secrets: SecretsUnderTest, unique_name: str) -> None:
    assert secrets.put is not None
    secrets.put(unique_name, "callback-key-v1")
    assert secrets.store.get(unique_name) == "callback-key-v1"
    assert resolve_secret(None, unique_name, what="the callback secret", store=secrets.store) == (
        "callback-key-v1"
    )


@pytest.mark.parametrize("secrets", HOLDING, indirect=True)
def test_a_json_secret_reads_as_its_object(secrets: SecretsUnderTest, unique_name: str) -> None:
    assert secrets.put is not None
    secrets.put(unique_name, json.dumps({"ak": "AK", "sk": "ß-secret"}))
    assert resolve_json_secret(unique_name, what="the SIS credentials", store=secrets.store) == {
        "ak": "AK",
        "sk": "ß-secret",
    }


@pytest.mark.parametrize("secrets", ["aws", "csms", "no-secret-store"], indirect=True)
def test_a_name_the_store_does_not_hold_is_missing(secrets: SecretsUnderTest, unique_name: str) -> None:
    assert secrets.store.get(unique_name) is None
    with pytest.raises(MissingSecret, match="the push token is not configured"):
        resolve_secret(None, unique_name, what="the push token", store=secrets.store)


@pytest.mark.parametrize("secrets", ["aws", "csms"], indirect=True)
def test_a_secret_without_a_value_is_missing_never_empty(secrets: SecretsUnderTest, unique_name: str) -> None:
    """An empty callback secret would sign every callback URL with an empty key: it must read as
    no secret at all."""
    assert secrets.put_without_value is not None
    secrets.put_without_value(unique_name)
    assert secrets.store.get(unique_name) is None
    with pytest.raises(MissingSecret):
        resolve_secret(None, unique_name, what="the callback secret", store=secrets.store)

"""The URL signer as a deployed function wires it, from its environment, over real wires.

AWS: the cloud's storage with the settings serverless.yml gives (the stack's bucket, the signer's
secret) and the function's region from Lambda's AWS_REGION; the key is one IAM made (moto) and put
in Secrets Manager (moto) as ``aws iam create-access-key --query AccessKey`` prints it. Huawei: the
cloud's storage with the settings infra/huawei gives, the key read from the CSMS emulator with the
agency's temporary key. Each: which host the URL names, which key signed it, and how often the
secret store is asked.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pydantic import SecretStr

from bucketscribe.clouds.aws import CLOUD as AWS
from bucketscribe.clouds.huawei import CLOUD as HUAWEI
from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS, HuaweiCredentials
from tests.integration.conftest import client
from tests.integration.csms_emulator import CsmsEmulator
from tests.presigned_urls import query, session_token, signature_matches

pytestmark = pytest.mark.integration

KEY = "incoming/a b+c/ünï côde.wav"
SECRET_NAME = "bucketscribe-prod-url-signer"
PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY = HuaweiCredentials(ak="AGENCYAK", sk=SecretStr("agency-sk"), security_token=SecretStr("agency-token"))


@pytest.fixture
def lambda_environment(aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A submit function's environment in eu-central-1, with Secrets Manager (only) on moto."""
    from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

    # Powertools keeps one secrets provider per process (its client, on the endpoint it was made
    # with, and its cache of values): this test's is made afresh and forgotten after.
    DEFAULT_PROVIDERS.clear()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.delenv("BUCKETSCRIBE_AWS_ENDPOINT_URL", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", aws)
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "lambda-role-session-token")
    monkeypatch.setenv("BUCKETSCRIBE_RECORDINGS_BUCKET", "recordings")
    monkeypatch.setenv("BUCKETSCRIBE_URL_SIGNER_SECRET_NAME", SECRET_NAME)
    yield aws
    DEFAULT_PROVIDERS.clear()


def secrets_manager(endpoint: str) -> Any:
    """Secrets Manager in the function's region (moto keeps each region's secrets apart)."""
    return boto3.client("secretsmanager", endpoint_url=endpoint, region_name="eu-central-1")


def test_a_deployed_function_signs_on_its_region_with_the_key_the_operator_stored(
    lambda_environment: str,
) -> None:
    iam, secrets = client("iam", lambda_environment), secrets_manager(lambda_environment)
    iam.create_user(UserName="bucketscribe-prod-url-signer")
    made = iam.create_access_key(UserName="bucketscribe-prod-url-signer")["AccessKey"]
    # What `aws iam create-access-key --query AccessKey` prints, piped into the secret (deploy.md).
    secrets.create_secret(Name=SECRET_NAME, SecretString=json.dumps(made, default=str))

    storage = AWS.storage()
    url = storage.presign_get("recordings", KEY, expires_s=12 * 3600, version_id="v1")
    assert urllib.parse.urlsplit(url).netloc == "recordings.s3.eu-central-1.amazonaws.com"
    assert query(url)["X-Amz-Credential"].startswith(f"{made['AccessKeyId']}/")
    assert session_token(url) is None  # not the function's session, whose token is in the environment
    assert signature_matches(url, made["SecretAccessKey"])

    # A key rotated in the secret reaches the URLs when the store's cache (5 minutes) lets it, not
    # on every presign: one Secrets Manager read per instance per five minutes.
    secrets.put_secret_value(
        SecretId=SECRET_NAME, SecretString=json.dumps({"AccessKeyId": "AKIAROTATED", "SecretAccessKey": "x"})
    )
    later = storage.presign_get("recordings", KEY, expires_s=12 * 3600)
    assert query(later)["X-Amz-Credential"].startswith(f"{made['AccessKeyId']}/")


def test_a_deployed_function_whose_signer_secret_is_still_empty_signs_with_its_role(
    lambda_environment: str,
) -> None:
    secrets_manager(lambda_environment).create_secret(Name=SECRET_NAME)  # as the stack makes it
    url = AWS.storage().presign_get("recordings", KEY, expires_s=600)
    assert urllib.parse.urlsplit(url).netloc == "recordings.s3.eu-central-1.amazonaws.com"
    assert session_token(url) == "lambda-role-session-token"


@pytest.fixture
def functiongraph_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[CsmsEmulator]:
    """A FunctionGraph function's environment in cn-east-3, its agency key handed over, CSMS emulated."""
    with CsmsEmulator(project_id=PROJECT, credentials=AGENCY) as csms:
        monkeypatch.setenv("BUCKETSCRIBE_OBS_REGION", "cn-east-3")
        monkeypatch.setenv("BUCKETSCRIBE_CSMS_ENDPOINT", csms.url)
        monkeypatch.setenv("RUNTIME_PROJECT_ID", PROJECT)
        monkeypatch.setenv("BUCKETSCRIBE_URL_SIGNER_SECRET_NAME", SECRET_NAME)
        monkeypatch.delenv("BUCKETSCRIBE_OBS_SERVER", raising=False)
        AGENCY_CREDENTIALS.remember(AGENCY)
        yield csms


def test_a_deployed_functiongraph_function_signs_with_the_key_in_csms(
    functiongraph_environment: CsmsEmulator,
) -> None:
    csms = functiongraph_environment
    csms.put_secret(SECRET_NAME, json.dumps({"ak": "OBSURLSIGNERAK", "sk": "obs-url-signer-sk"}))
    storage = HUAWEI.storage()
    urls = [storage.presign_get("recordings", KEY, expires_s=12 * 3600) for _ in range(3)]
    assert {urllib.parse.urlsplit(url).netloc for url in urls} == {
        "recordings.obs.cn-east-3.myhuaweicloud.com"
    }
    assert all(query(url)["X-Amz-Credential"].startswith("OBSURLSIGNERAK/") for url in urls)
    assert all(session_token(url) is None for url in urls)
    assert signature_matches(urls[0], "obs-url-signer-sk")
    assert csms.reads[SECRET_NAME] == 1  # cached for five minutes


def test_a_deployed_functiongraph_function_with_the_placeholder_signs_with_its_agency(
    functiongraph_environment: CsmsEmulator,
) -> None:
    functiongraph_environment.put_secret(SECRET_NAME, "{}")  # what Terraform writes until the operator
    url = HUAWEI.storage().presign_get("recordings", KEY, expires_s=600)
    assert query(url)["X-Amz-Credential"].startswith(f"{AGENCY.ak}/")
    assert session_token(url) == "agency-token"

"""The Huawei Cloud wiring over real wires: the OBS SDK signing with a key that changes while the
function lives, the job store reaching a DynamoDB-compatible endpoint with a key pair read from
CSMS (GeminiDB's set-up), and FunctionGraph's failure records in OBS settled by the reconciler.

Signatures are checked by a moto server running with authentication; CSMS is the emulator that
verifies the agency's signature and token (tests/integration/csms_emulator.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr

from bucketscribe.clouds.aws.job_store import create_jobs_table
from bucketscribe.clouds.huawei import CLOUD as HUAWEI
from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.clouds.huawei.failed_invocations import FailedInvocations
from bucketscribe.clouds.huawei.secrets import CsmsSecretStore
from bucketscribe.clouds.huawei.storage import ObsStorage, ObsStorageError
from bucketscribe.clouds.registry import cloud
from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import MissingSecret, NoSecretStore, SecretStore
from bucketscribe.settings import Settings
from bucketscribe.wiring import build_ports
from tests.audio import tone_wav
from tests.fakes import FakeProvider, InMemoryJobStore
from tests.integration.conftest import AuthMoto, client
from tests.integration.csms_emulator import CsmsEmulator
from tests.profiles import profile

pytestmark = pytest.mark.integration

BUCKET = "recordings"
PREFIX = "failed-invocations/submit/"
PROJECT = "0123456789abcdef0123456789abcdef"
AGENCY = HuaweiCredentials(ak="AGENCYAK", sk=SecretStr("agency-sk"), security_token=SecretStr("agency-token"))


def obs(endpoint: str, credentials: HuaweiCredentials | None = None) -> ObsStorage:
    key = credentials or HuaweiCredentials(ak="t", sk=SecretStr("t"))
    return ObsStorage(server=endpoint, region="us-east-1", credentials=lambda: key)


# -- the OBS adapter and a key that changes --------------------------------------------------------


def test_the_obs_adapter_signs_each_request_with_the_key_it_is_given_now(auth_moto: AuthMoto) -> None:
    """An agency's temporary key is renewed while a function instance lives on: the adapter, built
    once per cold start, must sign with the current one, not the one it was built with."""
    current = [HuaweiCredentials(ak=auth_moto.ak, sk=SecretStr("an-expired-secret-0123456789"))]
    storage = ObsStorage(server=auth_moto.endpoint, region="us-east-1", credentials=lambda: current[0])
    with pytest.raises(ObsStorageError) as refused:
        storage.put(BUCKET, "renewed.txt", b"x", content_type="text/plain")
    assert refused.value.status == 403
    current[0] = HuaweiCredentials(ak=auth_moto.ak, sk=SecretStr(auth_moto.sk))
    storage.put(BUCKET, "renewed.txt", b"signed with the new key", content_type="text/plain")
    assert storage.get(BUCKET, "renewed.txt") == b"signed with the new key"
    # A presigned URL carries the key it was signed with (moto cannot check presigned URLs here).
    current[0] = HuaweiCredentials(ak="ROTATEDAGENCYAK", sk=SecretStr("s"), security_token=SecretStr("t"))
    assert "ROTATEDAGENCYAK" in storage.presign_get(BUCKET, "renewed.txt", expires_s=600)


def test_keys_under_a_prefix_are_listed_in_order(aws: str) -> None:
    client("s3", aws).create_bucket(Bucket=BUCKET)
    storage = obs(aws)
    for key in (f"{PREFIX}b.json", f"{PREFIX}a.json", "failed-invocations/other/c.json", "incoming/x.wav"):
        storage.put(BUCKET, key, b"{}", content_type="application/json")
    assert storage.list_keys(BUCKET, PREFIX) == [f"{PREFIX}a.json", f"{PREFIX}b.json"]
    assert storage.list_keys(BUCKET, PREFIX, limit=1) == [f"{PREFIX}a.json"]
    assert storage.list_keys(BUCKET, "nothing/") == []


# -- the job store on a compatible endpoint, its key pair from CSMS --------------------------------


@pytest.fixture
def csms() -> Iterator[CsmsEmulator]:
    with CsmsEmulator(project_id=PROJECT, credentials=AGENCY) as emulator:
        yield emulator


@pytest.fixture
def secrets_from_csms(csms: CsmsEmulator) -> CsmsSecretStore:
    """The Huawei cloud's secret store, CSMS, read with the agency key (as on FunctionGraph)."""
    return CsmsSecretStore(project_id=PROJECT, endpoint=csms.url, credentials=lambda: AGENCY)


def job_store(endpoint: str, table: str, secrets: SecretStore, monkeypatch: pytest.MonkeyPatch) -> JobStore:
    """The Huawei cloud's job store as its settings give it: a compatible endpoint, the database
    user's key pair from a secret."""
    for name, value in (
        ("BUCKETSCRIBE_JOBS_ENDPOINT_URL", endpoint),
        ("BUCKETSCRIBE_JOBS_REGION", "us-east-1"),
        ("BUCKETSCRIBE_JOBS_CREDENTIALS_SECRET_NAME", "bucketscribe-jobs-store"),
    ):
        monkeypatch.setenv(name, value)
    return HUAWEI.job_store(Settings(jobs_table=table), secrets)


def a_job(key: str) -> Job:
    ref = ObjectRef(bucket=BUCKET, key=key, size=10, etag="e")
    return Job.for_upload(ref, profile="default", provider="sis", model="m", now=utc_now())


def test_the_job_store_signs_with_the_database_user_from_its_secret(
    auth_moto: AuthMoto,
    csms: CsmsEmulator,
    secrets_from_csms: CsmsSecretStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import boto3

    table = "jobs-from-secret"
    admin = boto3.client(
        "dynamodb",
        endpoint_url=auth_moto.endpoint,
        region_name="us-east-1",
        aws_access_key_id=auth_moto.ak,
        aws_secret_access_key=auth_moto.sk,
    )
    create_jobs_table(admin, table)
    csms.put_secret("bucketscribe-jobs-store", json.dumps({"ak": auth_moto.ak, "sk": auth_moto.sk}))
    store = job_store(auth_moto.endpoint, table, secrets_from_csms, monkeypatch)
    job = a_job("incoming/from-secret.wav")
    assert store.create(job)
    assert store.get(job.id) == job
    assert [due.id for due in store.due(utc_now(), limit=10)] == [job.id]


def test_a_wrong_or_incomplete_key_pair_in_the_secret_is_refused(
    auth_moto: AuthMoto,
    csms: CsmsEmulator,
    secrets_from_csms: CsmsSecretStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    csms.put_secret("bucketscribe-jobs-store", json.dumps({"ak": auth_moto.ak, "sk": "wrong-password"}))
    wrong = job_store(auth_moto.endpoint, "any-table", secrets_from_csms, monkeypatch)
    with pytest.raises(ClientError) as refused:
        wrong.get("0" * 32)
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
    assert "wrong-password" not in str(refused.value)
    csms.put_secret("bucketscribe-jobs-store", json.dumps({"ak": auth_moto.ak}))
    # A new cold start reads the secret again (CsmsSecretStore caches per instance).
    cold = CsmsSecretStore(project_id=PROJECT, endpoint=csms.url, credentials=lambda: AGENCY)
    with pytest.raises(MissingSecret, match='need "ak" and "sk"'):
        job_store(auth_moto.endpoint, "any-table", cold, monkeypatch)


# -- FunctionGraph's failure records, settled -------------------------------------------------------


def failure_record(request_id: str, payload: object) -> bytes:
    """What FunctionGraph writes to an OBS failure destination (user guide, "Asynchronous
    Notification Policy"); the payload is the event the function failed on."""
    return json.dumps(
        {
            "timestamp": "2026-11-20T09:00:00.000Z+08:00",
            "request_context": {
                "request_id": request_id,
                "function_urn": "urn:fss:cn-north-4:0123:function:default:bucketscribe-prod-submit:latest",
                "condition": "RetriesExhausted",
                "approximate_invoke_count": 4,
            },
            "request_payload": payload,
            "response_context": {"status_code": 200, "function_error": "SubmitLater: job store unavailable"},
            "response_payload": "",
        }
    ).encode()


def obs_event(key: str) -> dict[str, object]:
    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": BUCKET}, "object": {"key": key}}}
    return {"Records": [record]}


def test_failure_records_in_obs_become_jobs_and_are_removed(aws: str) -> None:
    s3 = client("s3", aws)
    s3.create_bucket(Bucket=BUCKET)
    storage = obs(aws)
    for name in ("as-text.wav", "as-object.wav"):
        storage.put(BUCKET, f"incoming/{name}", tone_wav(1), content_type="audio/wav")
    records = {
        f"{PREFIX}r1.json": failure_record("r1", json.dumps(obs_event("incoming/as-text.wav"))),
        f"{PREFIX}r2.json": failure_record("r2", obs_event("incoming/as-object.wav")),
        f"{PREFIX}garbage.json": b"this is not a failure record",
        PREFIX: b"",  # a folder placeholder, as consoles create them
    }
    for key, body in records.items():
        s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    provider = FakeProvider()
    ports = PipelinePorts(
        storage=storage,
        jobs=InMemoryJobStore(),
        providers={"sis": provider},
        signer=CallbackSigner(b"integration-test-secret-0123"),
        layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
        profiles=ProfileSet(profiles=[profile()]),
        callback_base_url="https://cb.example.com",
        dead_letters=FailedInvocations(storage, BUCKET, PREFIX),
    )
    report = reconcile(ports)
    assert (report.dead_letters, report.dead_letters_set_aside) == (2, 1)
    assert storage.list_keys(BUCKET, PREFIX) == [PREFIX]
    assert isinstance(ports.jobs, InMemoryJobStore)
    jobs = {job.source.key: job.state for job in ports.jobs.jobs.values()}
    assert jobs == {"incoming/as-text.wav": JobState.SUBMITTED, "incoming/as-object.wav": JobState.SUBMITTED}
    assert len(provider.submissions) == 2
    assert reconcile(ports).dead_letters == 0


def test_obs_settings_wire_the_failure_records_and_the_agency_key(
    aws: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS

    monkeypatch.setattr(AGENCY_CREDENTIALS, "_remembered", AGENCY)
    for name, value in (
        ("BUCKETSCRIBE_OBS_SERVER", aws),
        ("BUCKETSCRIBE_OBS_REGION", "us-east-1"),
        ("BUCKETSCRIBE_JOBS_ENDPOINT_URL", aws),
        ("BUCKETSCRIBE_JOBS_REGION", "us-east-1"),
        ("BUCKETSCRIBE_FAILED_INVOCATIONS_BUCKET", BUCKET),
    ):
        monkeypatch.setenv(name, value)
    settings = Settings(cloud="huawei", callback_secret=SecretStr("x" * 32))
    ports = build_ports(settings, NoSecretStore(), cloud(settings.cloud))
    assert isinstance(ports.storage, ObsStorage) and isinstance(ports.dead_letters, FailedInvocations)
    client("s3", aws).create_bucket(Bucket=BUCKET)
    ports.storage.put(
        BUCKET,
        f"{PREFIX}r.json",
        failure_record("r", obs_event("incoming/gone.wav")),
        content_type="application/json",
    )
    (letter,) = ports.dead_letters.receive(10)
    assert letter.message_id == "r" and json.loads(letter.body) == obs_event("incoming/gone.wav")

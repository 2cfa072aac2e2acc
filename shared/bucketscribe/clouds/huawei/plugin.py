"""Huawei Cloud: OBS, GeminiDB's DynamoDB-compatible API (through the DynamoDB-wire job store),
CSMS, FunctionGraph's failure records and SMN (jobs' events), as the cloud registry knows them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.ports.event_bus import EventBus
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import LazySecretStore, MissingSecret, SecretStore, resolve_json_secret
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.settings import Settings

if TYPE_CHECKING:
    from bucketscribe.clouds.huawei.settings import HuaweiSettings


def _own_settings() -> HuaweiSettings:
    # Read when a Huawei adapter is built, so that other clouds' functions never load them.
    from bucketscribe.clouds.huawei.settings import HuaweiSettings

    return HuaweiSettings()


class HuaweiCloud:
    name = "huawei"
    uri_scheme = "obs"

    def settings_problems(self, settings: Settings) -> list[str]:
        own = _own_settings()
        problems = []
        if own.failed_invocations_bucket and own.failed_invocations_prefix.startswith(settings.input_prefix):
            problems.append(
                f"BUCKETSCRIBE_FAILED_INVOCATIONS_PREFIX ({own.failed_invocations_prefix}) lies under the "
                f"input prefix ({settings.input_prefix}): "
                "every failure record would start the submit function"
            )
        if own.smn_topic_urn and topic_place(own.smn_topic_urn) is None:
            problems.append(
                f"BUCKETSCRIBE_SMN_TOPIC_URN ({own.smn_topic_urn}) is not a topic URN "
                "(urn:smn:<region>:<project id>:<name>)"
            )
        return problems

    def secret_store(self) -> SecretStore:
        from bucketscribe.clouds.huawei.secrets import CsmsSecretStore

        own = _own_settings()
        if not own.project_id:
            raise MissingSecret(
                "the CSMS project is not configured: set BUCKETSCRIBE_CSMS_PROJECT_ID "
                "(FunctionGraph sets RUNTIME_PROJECT_ID)"
            )
        return CsmsSecretStore(project_id=own.project_id, region=own.csms_region, endpoint=own.csms_endpoint)

    def storage(self) -> ObjectStorage:
        from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS
        from bucketscribe.clouds.huawei.settings import HuaweiSettings
        from bucketscribe.clouds.huawei.storage import ObsStorage
        from bucketscribe.clouds.huawei.url_signing import SignerKeySource

        own = HuaweiSettings()
        # The agency's temporary key, which the FunctionGraph entry points hand over on every
        # invocation (renewed while the instance lives); elsewhere HUAWEICLOUD_SDK_AK/SK. Media
        # URLs are signed with the URL signer's permanent key, read from CSMS on the first presign
        # (so functions that never presign, the callback, never read it).
        signing_key = SignerKeySource(own.url_signer_secret_name, LazySecretStore(self.secret_store))
        return ObsStorage(
            server=own.obs_server,
            region=own.obs_region,
            credentials=AGENCY_CREDENTIALS.current,
            url_signing_key=signing_key,
        )

    def job_store(self, settings: Settings, secrets: SecretStore) -> JobStore:
        # GeminiDB speaks the DynamoDB wire (a documented subset, which the adapter keeps to).
        from bucketscribe.clouds.aws.job_store import DynamoJobStore

        own = _own_settings()
        key_pair = None
        if own.jobs_credentials_secret_name:
            name = own.jobs_credentials_secret_name
            stored = resolve_json_secret(name, what="the job store credentials", store=secrets)
            ak, sk = stored.get("ak"), stored.get("sk")
            if not (isinstance(ak, str) and ak and isinstance(sk, str) and sk):
                raise MissingSecret(
                    f"the job store credentials in secret {name!r} need "
                    '"ak" and "sk" (for GeminiDB: a database user and its password)'
                )
            key_pair = (ak, SecretStr(sk))
        return DynamoJobStore(
            settings.jobs_table,
            endpoint_url=own.jobs_endpoint_url,
            region_name=own.jobs_region,
            key_pair=key_pair,
        )

    def dead_letters(self, storage: ObjectStorage) -> DeadLetters | None:
        own = _own_settings()
        if not own.failed_invocations_bucket:
            return None
        from bucketscribe.clouds.huawei.failed_invocations import FailedInvocations
        from bucketscribe.clouds.huawei.storage import ObsStorage

        assert isinstance(storage, ObsStorage)  # the Huawei cloud's storage is OBS
        return FailedInvocations(storage, own.failed_invocations_bucket, own.failed_invocations_prefix)

    def event_bus(self) -> EventBus | None:
        own = _own_settings()
        place = topic_place(own.smn_topic_urn) if own.smn_topic_urn else None
        if own.smn_topic_urn is None or place is None:
            return None  # none named (a malformed URN is refused when the settings load)
        from bucketscribe.clouds.huawei.event_topic import SmnTopic

        region, project_id = place
        return SmnTopic(own.smn_topic_urn, project_id=project_id, region=region, endpoint=own.smn_endpoint)


def topic_place(urn: str) -> tuple[str, str] | None:
    """(region, project id) of an SMN topic URN, ``urn:smn:<region>:<project id>:<name>``."""
    parts = urn.split(":")
    if len(parts) != 5 or parts[:2] != ["urn", "smn"] or not all(parts[2:]):
        return None
    return parts[2], parts[3]


CLOUD = HuaweiCloud()

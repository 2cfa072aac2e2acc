"""The Huawei cloud's own settings (``BUCKETSCRIBE_*``): OBS, the GeminiDB job store, CSMS,
FunctionGraph's failure records and the SMN topic of jobs' events."""

from __future__ import annotations

import os

from bucketscribe.settings import EnvironmentSettings


class HuaweiSettings(EnvironmentSettings):
    # OBS, through esdk-obs-python, signed with the function's agency key.
    obs_server: str | None = None
    obs_region: str = "cn-north-4"
    # The URL signer's permanent key in CSMS ({"ak": ..., "sk": ...}): media URLs signed with it
    # last BUCKETSCRIBE_PRESIGN_EXPIRY_S; unset or "{}", they are signed with the agency's
    # temporary key and die with it (clouds/huawei/url_signing.py).
    url_signer_secret_name: str | None = None
    # The job store: a GeminiDB DynamoDB-compatible instance (its load-balancer address in the VPC),
    # the key pair it checks as a secret {"ak": ..., "sk": ...} (a database user and its password),
    # and the signing region the DynamoDB wire needs there.
    jobs_endpoint_url: str | None = None
    jobs_credentials_secret_name: str | None = None
    jobs_region: str | None = None
    # Where FunctionGraph writes upload events whose retries all failed (the submit function's
    # failure destination); the reconciler settles them as it settles dead letters.
    failed_invocations_bucket: str | None = None
    failed_invocations_prefix: str = "failed-invocations/submit/"
    # CSMS (DEW), read with the function's agency key; FunctionGraph sets RUNTIME_PROJECT_ID.
    csms_region: str = "cn-north-4"
    csms_endpoint: str | None = None
    csms_project_id: str | None = None
    # The SMN topic every job's end is published to, by its URN (which names its region and
    # project: urn:smn:<region>:<project id>:<name>); unset: none are published.
    smn_topic_urn: str | None = None
    smn_endpoint: str | None = None

    @property
    def project_id(self) -> str | None:
        return (
            self.csms_project_id
            or os.environ.get("RUNTIME_PROJECT_ID")
            or os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID")
        )

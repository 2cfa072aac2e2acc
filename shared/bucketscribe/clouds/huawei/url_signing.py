"""The key OBS media URLs are signed with, so that SIS and DashScope can still fetch them hours later.

The host is already right: the OBS client addresses the bucket virtual-hosted on its region's
endpoint (``https://<bucket>.obs.<region>.myhuaweicloud.com/<key>``, ``storage.default_server``).
The key is not: a URL signed with the function agency's temporary key (valid 24 h from when
FunctionGraph issued it, and handed to an instance at any point of those 24 h) stops working when
that key expires, whatever its own expiry says. The URL signer, an IAM user that may only read
what gets presigned (``infra/huawei/iam.tf``), has a permanent key, so its URLs last exactly
``BUCKETSCRIBE_PRESIGN_EXPIRY_S``, which the providers' settings hold against their promises. Its
key lives in CSMS (``BUCKETSCRIBE_URL_SIGNER_SECRET_NAME``, ``{"ak": ..., "sk": ...}``) and is used
for nothing but signing URLs.

Without it, URLs are signed with the agency's key, and the first such URL of each function instance
says so in the log (docs/deploy.md: what fails, and when).
"""

from __future__ import annotations

import json
import logging

from pydantic import SecretStr

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.ports.secrets import MissingSecret, SecretStore

# A child of the Powertools logger (observability.py): its lines are JSON, with credentials redacted.
log = logging.getLogger(__name__)

AGENCY_SIGNS_WARNING = (
    "Media URLs are signed with the function agency's temporary key: a URL stops working when that "
    "key expires (at most 24 h after FunctionGraph issued it, however long "
    "BUCKETSCRIBE_PRESIGN_EXPIRY_S is), so a provider that fetches the upload later fails the job. "
    "{why} (docs/deploy.md, 'The URL signer')."
)


def signing_key_from_secret(text: str, *, secret_name: str) -> HuaweiCredentials | None:
    """The signer's permanent key from the secret's value ``{"ak": ..., "sk": ...}``; ``None`` for
    the placeholder Terraform writes (``{}``) until the operator puts the key in."""
    try:
        stored = json.loads(text)
    except json.JSONDecodeError:
        stored = None
    if stored == {}:
        return None
    ak = stored.get("ak") if isinstance(stored, dict) else None
    sk = stored.get("sk") if isinstance(stored, dict) else None
    if not (isinstance(ak, str) and ak and isinstance(sk, str) and sk):
        # Never the value itself: it may be most of a key.
        raise MissingSecret(
            f'the URL signer\'s key in secret {secret_name!r} must be JSON {{"ak": ..., "sk": ...}} '
            "(a permanent access key of the URL signer user)"
        )
    return HuaweiCredentials(ak=ak, sk=SecretStr(sk))


class SignerKeySource:
    """The URL signer's current key, or ``None`` while there is none to sign with.

    Read on every presign: the secret store caches the value (five minutes), so a rotated key is
    picked up without a redeploy, at one CSMS read per instance per five minutes.
    """

    def __init__(self, secret_name: str | None, store: SecretStore) -> None:
        self.secret_name = secret_name
        self._store = store

    def __call__(self) -> HuaweiCredentials | None:
        if not self.secret_name:
            return None
        text = self._store.get(self.secret_name)
        if not text:
            return None
        return signing_key_from_secret(text, secret_name=self.secret_name)

    def why_not(self) -> str:
        """Why there is no key to sign with, for the warning."""
        if not self.secret_name:
            return "BUCKETSCRIBE_URL_SIGNER_SECRET_NAME is not set"
        return f"the URL signer's secret {self.secret_name!r} holds no key yet"

    def say_agency_signs(self) -> None:
        log.warning(AGENCY_SIGNS_WARNING.format(why=self.why_not()))

"""Presigned S3 URLs that SIS and DashScope can still fetch hours later, from outside AWS.

Two things decide whether a presigned GET works when a provider gets to it:

- **The host.** The global host (``bucket.s3.amazonaws.com``, boto3's default for presigning)
  answers a 307 to the regional one for a bucket outside us-east-1 while its DNS settles (for
  an opt-in region's bucket, always), and the redirected request carries a SigV4 signature made
  for another host: the provider gets an error. So every URL names the bucket's regional
  endpoint, virtual-hosted: ``https://<bucket>.s3.<region>.amazonaws.com/<key>`` (us-east-1
  included). A bucket name with dots cannot be virtual-hosted under TLS (the wildcard
  certificate does not cover it), so botocore writes those path-style on the same endpoint.
- **The key.** A URL signed with temporary credentials stops working when they expire, whatever
  its own ``X-Amz-Expires`` says; the function role's session is such a credential. The URL
  signer, an IAM user that may only read what gets presigned (``infra/resources/iam.yml``),
  has a long-term key, so its URLs last exactly ``BUCKETSCRIBE_PRESIGN_EXPIRY_S``, which the
  providers' settings hold against their promises. Its key lives in Secrets Manager
  (``BUCKETSCRIBE_URL_SIGNER_SECRET_NAME``) and is used for nothing but signing URLs.

Without the signer, URLs are signed with the role's session, and the first such URL of each
function instance says so in the log (docs/deploy.md: what fails, and when).
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, SecretStr

from bucketscribe.ports.secrets import MissingSecret, SecretStore

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# A child of the Powertools logger (observability.py): its lines are JSON, with credentials redacted.
log = logging.getLogger(__name__)

# GetBucketLocation's answer for the two regions that predate location constraints.
_LEGACY_LOCATIONS = {"": "us-east-1", "EU": "eu-west-1"}

ROLE_SIGNS_WARNING = (
    "Media URLs are signed with the function role's temporary session: a URL stops working when "
    "that session expires (within hours, however long BUCKETSCRIBE_PRESIGN_EXPIRY_S is), so a "
    "provider that fetches the upload later fails the job. {why} (docs/deploy.md, 'The URL signer')."
)


class SigningKey(BaseModel):
    """The URL signer's access key: long-term, so its URLs outlive any session."""

    model_config = ConfigDict(frozen=True)

    access_key_id: str
    secret_access_key: SecretStr


def signing_key_from_secret(text: str, *, secret_name: str) -> SigningKey:
    """The key from the secret's value: the object ``aws iam create-access-key --query AccessKey``
    prints (``AccessKeyId``, ``SecretAccessKey``; other fields ignored), so that output can be put
    in the secret without anyone reading it."""
    try:
        stored = json.loads(text)
    except json.JSONDecodeError:
        stored = None
    key_id = stored.get("AccessKeyId") if isinstance(stored, dict) else None
    secret = stored.get("SecretAccessKey") if isinstance(stored, dict) else None
    if not (isinstance(key_id, str) and key_id and isinstance(secret, str) and secret):
        # Never the value itself: it may be most of a key.
        raise MissingSecret(
            f"the URL signer's key in secret {secret_name!r} must be JSON with AccessKeyId and "
            "SecretAccessKey (the output of `aws iam create-access-key --query AccessKey`)"
        )
    return SigningKey(access_key_id=key_id, secret_access_key=SecretStr(secret))


class SignerKeySource:
    """The URL signer's current key, or ``None`` while there is none to sign with.

    Read on every presign: the secret store caches the value (five minutes), so a rotated key is
    picked up without a redeploy, at one Secrets Manager read per instance per five minutes.
    """

    def __init__(self, secret_name: str | None, store: SecretStore) -> None:
        self.secret_name = secret_name
        self._store = store

    def __call__(self) -> SigningKey | None:
        if not self.secret_name:
            return None
        text = self._store.get(self.secret_name)
        if not text:
            return None  # the stack made the secret; the operator has not put the key in yet
        return signing_key_from_secret(text, secret_name=self.secret_name)

    def why_not(self) -> str:
        """Why there is no key to sign with, for the warning."""
        if not self.secret_name:
            return "BUCKETSCRIBE_URL_SIGNER_SECRET_NAME is not set"
        return f"the URL signer's secret {self.secret_name!r} holds no key yet"


def carries_session_token(url: str) -> bool:
    """Whether a presigned URL was signed with temporary credentials (it then names their token)."""
    return "x-amz-security-token=" in url.lower()


def region_of_location(constraint: str | None) -> str:
    """A bucket's region from its GetBucketLocation answer (us-east-1 answers no constraint)."""
    return _LEGACY_LOCATIONS.get(constraint or "", constraint or "")


class BucketRegions:
    """The region each bucket lives in: those given up front (the stack's own bucket, made in
    the function's region) without a request; any other asked once and remembered for the
    instance's life (a bucket never moves)."""

    def __init__(self, known: Mapping[str, str], ask: Callable[[str], str]) -> None:
        self._known = dict(known)
        self._ask = ask
        self._lock = threading.Lock()

    def region_of(self, bucket: str) -> str:
        # Held while asking, so that threads presigning side by side ask once between them (the
        # stack's own bucket is known: this waits only on a foreign bucket's first lookup).
        with self._lock:
            found = self._known.get(bucket)
            if found is None:
                found = self._known[bucket] = self._ask(bucket)
            return found


def bucket_regions(
    own_bucket: str | None, lookup_client: Callable[[], S3Client] | None = None
) -> BucketRegions:
    """Regions for a deployed function: its own bucket's is the function's (``AWS_REGION``, set by
    Lambda), so the stack never asks; any other bucket's comes from one GetBucketLocation (the
    role needs ``s3:GetBucketLocation`` on it), made by a client built on that first lookup."""
    function_region = os.environ.get("AWS_REGION")
    known = {own_bucket: function_region} if own_bucket and function_region else {}
    clients: list[S3Client] = []

    def ask(bucket: str) -> str:
        if not clients:
            clients.append(lookup_client() if lookup_client else _default_client())
        answer = clients[0].get_bucket_location(Bucket=bucket)
        return region_of_location(answer.get("LocationConstraint"))

    return BucketRegions(known, ask)


def _default_client() -> S3Client:
    import boto3

    return boto3.client("s3")


class RegionalUrlSigner:
    """Presigned GET URLs on each bucket's regional endpoint, signed with the URL signer's key
    when there is one, else (said once per instance) with the function role's credentials."""

    def __init__(
        self,
        regions: BucketRegions,
        signing_key: SignerKeySource,
        *,
        client_for: Callable[[str, SigningKey | None], Any] | None = None,
    ) -> None:
        self._regions = regions
        self._signing_key = signing_key
        self._client_for = client_for or regional_client
        self._clients: dict[tuple[str, SigningKey | None], Any] = {}
        self._lock = threading.Lock()
        self._said_role_signs = False

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        signing_key = self._signing_key()
        client = self._client(self._regions.region_of(bucket), signing_key)
        params = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        url = str(client.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s))
        if signing_key is None and carries_session_token(url):
            # Only a temporary key makes the URL die early: long-term keys (a laptop's) do not.
            self._say_role_signs()
        return url

    def _client(self, region: str, signing_key: SigningKey | None) -> Any:
        with self._lock:
            client = self._clients.get((region, signing_key))
            if client is None:
                client = self._client_for(region, signing_key)
                self._clients[(region, signing_key)] = client
            return client

    def _say_role_signs(self) -> None:
        with self._lock:
            if self._said_role_signs:
                return
            self._said_role_signs = True
        log.warning(ROLE_SIGNS_WARNING.format(why=self._signing_key.why_not()))


def regional_client(region: str, signing_key: SigningKey | None) -> Any:
    """An S3 client that presigns on ``region``'s endpoint, virtual-hosted: with the signer's key,
    or (``None``) the default credential chain (the function's role)."""
    import boto3
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        # "virtual" and "regional": without them botocore presigns on the global host, the one
        # that redirects; a bucket name with dots still gets path-style on the regional host.
        s3={"addressing_style": "virtual", "us_east_1_regional_endpoint": "regional"},
    )
    if signing_key is None:
        return boto3.client("s3", region_name=region, config=config)
    return boto3.client(
        "s3",
        region_name=region,
        config=config,
        aws_access_key_id=signing_key.access_key_id,
        aws_secret_access_key=signing_key.secret_access_key.get_secret_value(),
        # A long-term key has no session token; an ambient AWS_SESSION_TOKEN must not ride along.
        aws_session_token=None,
    )

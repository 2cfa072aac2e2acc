"""Huawei OBS adapter for the storage port (esdk-obs-python, imported lazily).

The SDK never raises for an HTTP error: every call returns a result with
``status``, ``errorCode`` and ``errorMessage``, which this adapter turns into
``ObsStorageError`` so failures cannot pass silently.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bucketscribe.clouds.huawei.credentials import HuaweiCredentials
from bucketscribe.ports.secrets import MissingSecret
from bucketscribe.ports.storage import UNREADABLE_STATUSES, ObjectInfo, ObjectUnreadable

if TYPE_CHECKING:
    from bucketscribe.clouds.huawei.url_signing import SignerKeySource

RANGE_NOT_SATISFIABLE = 416
_READ_CHUNK = 64 * 1024


class ObsStorageError(RuntimeError):
    """An OBS call failed: an HTTP error answer, or no answer at all."""

    def __init__(
        self,
        operation: str,
        bucket: str,
        key: str,
        *,
        status: int | None,
        error_code: str | None = None,
        error_message: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.operation = operation
        self.bucket = bucket
        self.key = key
        self.status = status
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id
        answer = f"HTTP {status}" if status is not None else "no answer"
        detail = ": ".join(part for part in (error_code, error_message) if part)
        message = f"OBS {operation} of obs://{bucket}/{key} failed: {answer}"
        if detail:
            message += f" {detail}"
        if request_id:
            message += f" (request {request_id})"
        super().__init__(message)


def carries_security_token(url: str) -> bool:
    """Whether a signed URL was signed with a temporary key (it then names its security token,
    as ``x-amz-security-token`` or ``x-obs-security-token`` after the signature type)."""
    lowered = url.lower()
    return "x-amz-security-token=" in lowered or "x-obs-security-token=" in lowered


def default_server(region: str) -> str:
    return f"https://obs.{region}.myhuaweicloud.com"


def _given_key(
    access_key_id: str | None, secret_access_key: SecretStr | None, security_token: SecretStr | None
) -> HuaweiCredentials:
    if access_key_id and secret_access_key:
        return HuaweiCredentials(ak=access_key_id, sk=secret_access_key, security_token=security_token)
    from_environment = HuaweiCredentials.from_environment()
    if from_environment is None:
        raise MissingSecret(
            "OBS credentials are not configured: pass access_key_id/secret_access_key "
            "or set HUAWEICLOUD_SDK_AK and HUAWEICLOUD_SDK_SK"
        )
    return from_environment


class ObsStorage:
    def __init__(
        self,
        client: Any | None = None,
        *,
        server: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: SecretStr | None = None,
        security_token: SecretStr | None = None,
        credentials: Callable[[], HuaweiCredentials] | None = None,
        region: str = "cn-north-4",
        signature: str = "v4",
        path_style: bool = False,
        url_signing_key: SignerKeySource | None = None,
    ) -> None:
        """``credentials``, when given, is asked for the current key before every request: a
        FunctionGraph agency's temporary key is renewed while the function instance lives on.

        ``url_signing_key``, when given, is asked for the URL signer's permanent key before every
        presign; URLs are signed with it (``url_signing.py``: they outlive the agency's key), or,
        while it has none, with the request key, which is said once in the log."""
        self._credentials = credentials
        self._signed_with: HuaweiCredentials | None = None
        self._url_signing_key = url_signing_key
        # What a second client, holding only the URL signer's key, is built with.
        self._client_options: dict[str, Any] = {
            "server": server or default_server(region),
            "signature": signature,
            "region": region,
            "path_style": path_style,
            "is_signature_negotiation": False,
        }
        self._url_client: Any = None
        self._url_client_key: HuaweiCredentials | None = None
        self._url_lock = threading.Lock()
        self._said_request_key_signs = False
        if client is None:
            from obs import ObsClient

            given = (access_key_id, secret_access_key, security_token)
            key = credentials() if credentials else _given_key(*given)
            client = ObsClient(
                access_key_id=key.ak,
                secret_access_key=key.sk.get_secret_value(),
                security_token=key.security_token.get_secret_value() if key.security_token else None,
                server=server or default_server(region),
                signature=signature,
                region=region,
                path_style=path_style,
                # The signature is chosen here; negotiation would cost an extra
                # request per bucket on every cold start.
                is_signature_negotiation=False,
            )
            self._signed_with = key
        self._obs = client
        # What the SDK settled on: it turns "obs" into "v2" for path-style addressing.
        self._signature = str(getattr(client, "signature", signature))

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        # getObjectMetadata, not headObject: only it parses the headers into a body.
        result = self._call(
            "head", bucket, key, lambda: self._obs.getObjectMetadata(bucket, key, **self._extra())
        )
        if result.status == 404:
            return None
        if result.status in UNREADABLE_STATUSES:
            raise ObjectUnreadable(bucket, key, int(result.status))
        self._raise_for_status("head", bucket, key, result)
        meta = result.body
        return ObjectInfo(
            size=int(meta.contentLength),
            etag=(meta.etag or "").strip('"') or None,
            version_id=meta.versionId,
            content_type=meta.contentType,
        )

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        from obs import GetObjectHeader

        wanted = max(length, 1)
        ranged = GetObjectHeader(range=f"bytes=0-{wanted - 1}")
        result = self._call(
            "read_head",
            bucket,
            key,
            lambda: self._obs.getObject(bucket, key, headers=ranged, **self._extra()),
        )
        if result.status == RANGE_NOT_SATISFIABLE:
            return b""  # the object is empty: it has no first byte to give
        self._raise_for_status("read_head", bucket, key, result)
        stream = result.body.response
        try:
            # Read at most what was asked for, even from a server that ignored the Range.
            chunks: list[bytes] = []
            remaining = wanted
            while remaining > 0:
                chunk = stream.read(min(remaining, _READ_CHUNK))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        finally:
            stream.close()
        return b"".join(chunks)[: max(length, 0)]

    def get(self, bucket: str, key: str) -> bytes:
        result = self._call(
            "get",
            bucket,
            key,
            lambda: self._obs.getObject(bucket, key, loadStreamInMemory=True, **self._extra()),
        )
        self._raise_for_status("get", bucket, key, result)
        return bytes(result.body.buffer or b"")

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        from obs import PutObjectHeader

        headers = PutObjectHeader(contentType=content_type)
        result = self._call(
            "put",
            bucket,
            key,
            lambda: self._obs.putContent(bucket, key, body, headers=headers, **self._extra()),
        )
        self._raise_for_status("put", bucket, key, result)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        # The SDK streams into the path it is given; a sibling temp file keeps a
        # failed transfer from leaving a truncated file under the real name.
        partial = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            result = self._call(
                "download",
                bucket,
                key,
                lambda: self._obs.getObject(bucket, key, downloadPath=str(partial), **self._extra()),
            )
            self._raise_for_status("download", bucket, key, result)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        from obs import PutObjectHeader

        if not src.is_file():
            # putFile would upload a whole directory tree under the key.
            raise FileNotFoundError(f"not a file: {src}")
        headers = PutObjectHeader(contentType=content_type)
        result = self._call(
            "upload",
            bucket,
            key,
            lambda: self._obs.putFile(bucket, key, str(src), headers=headers, **self._extra()),
        )
        self._raise_for_status("upload", bucket, key, result)

    def delete(self, bucket: str, key: str) -> None:
        result = self._call(
            "delete", bucket, key, lambda: self._obs.deleteObject(bucket, key, **self._extra())
        )
        if result.status != 404:
            self._raise_for_status("delete", bucket, key, result)

    def list_keys(self, bucket: str, prefix: str, *, limit: int = 1000) -> list[str]:
        """Keys under ``prefix``, in key order, at most ``limit`` (one listing request)."""
        result = self._call(
            "list",
            bucket,
            prefix,
            lambda: self._obs.listObjects(bucket, prefix=prefix, max_keys=limit, **self._extra()),
        )
        self._raise_for_status("list", bucket, prefix, result)
        return [str(item.key) for item in result.body.contents or []]

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        query = {"versionId": version_id} if version_id else None
        signer_key = self._url_signing_key() if self._url_signing_key is not None else None
        if signer_key is None:
            self._use_current_key()
            signed = self._obs.createSignedUrl("GET", bucket, key, expires=expires_s, queryParams=query)
            url = str(signed.signedUrl)
            if carries_security_token(url):
                # Only a temporary key makes the URL die early: a permanent one (a laptop's) does not.
                self._say_request_key_signs()
            return url
        with self._url_lock:  # one client, re-keyed on rotation: sign with the key just set
            client = self._url_client_for(signer_key)
            signed = client.createSignedUrl("GET", bucket, key, expires=expires_s, queryParams=query)
        return str(signed.signedUrl)

    def _url_client_for(self, signer_key: HuaweiCredentials) -> Any:
        if self._url_client is None:
            from obs import ObsClient

            self._url_client = ObsClient(
                access_key_id=signer_key.ak,
                secret_access_key=signer_key.sk.get_secret_value(),
                **self._client_options,
            )
        elif signer_key != self._url_client_key:
            self._url_client.refresh(signer_key.ak, signer_key.sk.get_secret_value(), None)
        self._url_client_key = signer_key
        return self._url_client

    def _say_request_key_signs(self) -> None:
        if self._url_signing_key is None:
            return  # built without a URL signer (tests, the local stack): nothing to warn about
        with self._url_lock:
            if self._said_request_key_signs:
                return
            self._said_request_key_signs = True
        self._url_signing_key.say_agency_signs()

    def _extra(self) -> dict[str, Any]:
        if self._signature.lower() != "v4":
            return {}
        # The SDK signs v4 requests with a Date header unless x-amz-date is given;
        # SigV4 verifiers that read only x-amz-date (moto's among them) reject that.
        # The SDK uses the supplied value for the signature, so both stay in step.
        return {"extensionHeaders": {"x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")}}

    def _call(self, operation: str, bucket: str, key: str, request: Any) -> Any:
        self._use_current_key()
        try:
            return request()
        except Exception as exc:  # the SDK raises bare Exception once its retries are spent
            raise ObsStorageError(operation, bucket, key, status=None, error_message=str(exc)) from exc

    def _use_current_key(self) -> None:
        if self._credentials is None:
            return
        current = self._credentials()
        if current != self._signed_with:
            token = current.security_token.get_secret_value() if current.security_token else None
            self._obs.refresh(current.ak, current.sk.get_secret_value(), token)
            self._signed_with = current

    @staticmethod
    def _raise_for_status(operation: str, bucket: str, key: str, result: Any) -> None:
        status = result.status
        if status is None or int(status) >= 300:
            raise ObsStorageError(
                operation,
                bucket,
                key,
                status=status,
                error_code=result.errorCode,
                error_message=result.errorMessage,
                request_id=result.requestId,
            )

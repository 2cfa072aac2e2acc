"""S3 adapter for the storage port (boto3, imported lazily)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bucketscribe.ports.storage import UNREADABLE_STATUSES, ObjectInfo, ObjectUnreadable

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from bucketscribe.clouds.aws.url_signing import RegionalUrlSigner


class S3Storage:
    def __init__(
        self,
        client: S3Client | None = None,
        *,
        endpoint_url: str | None = None,
        url_signer: RegionalUrlSigner | None = None,
    ) -> None:
        """``url_signer`` signs the URLs handed out (the deployed functions: each bucket's regional
        endpoint, the URL signer's key); without it they are signed by ``client`` on its own
        endpoint (the local stack's, with its static keys)."""
        if client is None:
            import boto3
            from botocore.config import Config

            # SigV4 presigned URLs work in every region and in moto; virtual-host
            # addressing would need DNS for bucket.localhost in the local stack.
            # A connection for each upload worked on at once (Limits.side_by_side, at most 64).
            config = Config(
                signature_version="s3v4",
                retries={"mode": "standard", "max_attempts": 5},
                max_pool_connections=64,
            )
            if endpoint_url:
                config = config.merge(Config(s3={"addressing_style": "path"}))
            client = boto3.client("s3", endpoint_url=endpoint_url, config=config)
        self._s3 = client
        self._url_signer = url_signer

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        from botocore.exceptions import ClientError

        try:
            meta = self._s3.head_object(Bucket=bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status in UNREADABLE_STATUSES:
                raise ObjectUnreadable(bucket, key, status) from exc
            raise
        return ObjectInfo(
            size=meta["ContentLength"],
            etag=meta.get("ETag", "").strip('"') or None,
            version_id=meta.get("VersionId"),
            content_type=meta.get("ContentType"),
        )

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        from botocore.exceptions import ClientError

        if length <= 0:
            return b""
        try:
            response = self._s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{length - 1}")
        except ClientError as exc:
            # An empty object has no byte 0: S3 answers 416 rather than an empty body.
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return b""
            raise
        return bytes(response["Body"].read()[:length])

    def get(self, bucket: str, key: str) -> bytes:
        return self._s3.get_object(Bucket=bucket, Key=key)["Body"].read()

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self._s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        self._s3.download_file(bucket, key, str(dest))

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        self._s3.upload_file(str(src), bucket, key, ExtraArgs={"ContentType": content_type})

    def delete(self, bucket: str, key: str) -> None:
        self._s3.delete_object(Bucket=bucket, Key=key)

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        if self._url_signer is not None:
            return self._url_signer.presign_get(bucket, key, expires_s=expires_s, version_id=version_id)
        params = {"Bucket": bucket, "Key": key}
        if version_id:
            params["VersionId"] = version_id
        return self._s3.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_s)

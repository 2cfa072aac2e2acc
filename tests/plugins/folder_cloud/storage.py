"""Buckets as folders, for the storage port. An object's ETag is the MD5 of its bytes, as a
bucket's is for a single put; a presigned URL is the object's ``file://`` URL (nothing signs it:
whoever can read the folder may read the object)."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from bucketscribe.ports.storage import ObjectInfo


class FolderStorage:
    def __init__(self, root: Path) -> None:
        self._root = root.resolve()

    def _path(self, bucket: str, key: str) -> Path:
        path = (self._root / bucket / key).resolve()
        if not path.is_relative_to(self._root / bucket):
            raise ValueError(f"the key {key!r} leads out of bucket {bucket!r}")
        return path

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        path = self._path(bucket, key)
        if not path.is_file():
            return None
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as body:
            while chunk := body.read(1024 * 1024):
                digest.update(chunk)
        return ObjectInfo(size=path.stat().st_size, etag=digest.hexdigest())

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        with self._path(bucket, key).open("rb") as body:
            return body.read(max(length, 0))

    def get(self, bucket: str, key: str) -> bytes:
        return self._path(bucket, key).read_bytes()

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Whole or not at all, as a bucket's put: a reader never sees half an object.
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        partial.write_bytes(body)
        os.replace(partial, path)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        shutil.copyfile(self._path(bucket, key), dest)

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        path = self._path(bucket, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
        shutil.copyfile(src, partial)
        os.replace(partial, path)

    def delete(self, bucket: str, key: str) -> None:
        self._path(bucket, key).unlink(missing_ok=True)

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        return self._path(bucket, key).as_uri()

"""The object-storage port: the few operations the pipeline needs from a bucket."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from pydantic import BaseModel


class ObjectInfo(BaseModel):
    size: int
    etag: str | None = None
    version_id: str | None = None
    content_type: str | None = None


class ObjectUnreadable(Exception):
    """The object is there but the store will not let us read it: 400 to a HEAD (encrypted with a
    key its uploader keeps, SSE-C). Asking again does not help; the job ends with the reason. (A
    403 is not taken for this: a HEAD's answer has no body to tell a revoked permission from our
    own key failing, which passes; such a job is retried and ends at its deadline.)"""

    def __init__(self, bucket: str, key: str, status: int) -> None:
        super().__init__(f"{bucket}/{key}: the storage answered HTTP {status} to reading it")
        self.status = status


# The answers to a HEAD that mean the object exists but is not ours to read.
UNREADABLE_STATUSES = frozenset({400})


class ObjectStorage(Protocol):
    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """Metadata of an object, or ``None`` when it does not exist; ``ObjectUnreadable`` when
        the store refuses to say (400, 403)."""
        ...

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        """The first ``length`` bytes (a ranged GET: never the whole recording)."""
        ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None: ...

    def download(self, bucket: str, key: str, dest: Path) -> None:
        """Stream an object to a local file (large recordings never sit in memory)."""
        ...

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None: ...

    def delete(self, bucket: str, key: str) -> None:
        """Remove an object of ours (a stale error report); absent objects are fine."""
        ...

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        """A URL the provider can fetch the object from without our credentials; with
        ``version_id`` it fetches exactly that version, even after the key is overwritten."""
        ...

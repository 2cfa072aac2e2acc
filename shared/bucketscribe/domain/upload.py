"""An upload: one object in a bucket, as a trigger event (or a HEAD of it) describes it."""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field


class ObjectRef(BaseModel):
    """One object in a bucket, as a trigger event (or a head request) describes it."""

    model_config = ConfigDict(frozen=True)

    bucket: str = Field(min_length=1)
    key: str = Field(min_length=1)
    version_id: str | None = None
    etag: str | None = None
    size: int | None = Field(default=None, ge=0)

    @property
    def revision(self) -> str:
        """What distinguishes this upload from an earlier one under the same key."""
        return self.version_id or (self.etag or "").strip('"') or "-"

    @property
    def identity(self) -> str:
        return f"{self.bucket}/{self.key}@{self.revision}"

    def job_id(self) -> str:
        """Deterministic job id: the same upload always maps to the same job (idempotency)."""
        return hashlib.sha256(self.identity.encode("utf-8")).hexdigest()[:32]

    def __str__(self) -> str:
        # Cloud-neutral: each cloud writes an address its own way (``CloudPlugin.uri_scheme``).
        return f"{self.bucket}/{self.key}"

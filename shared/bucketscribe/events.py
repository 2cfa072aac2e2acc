"""Every upload-trigger shape → a list of ``ObjectRef``.

Handled shapes:
- S3 event notifications (``Records[].s3``), delivered directly or as an SQS
  message body (what the bucket → queue notification sends);
- the Huawei FunctionGraph OBS trigger (``Records[].s3`` or ``Records[].obs``);
- ``s3:TestEvent`` (sent when a notification is configured) → nothing.

Keys arrive URL-encoded (``+`` for space, ``%2F``, UTF-8 percent escapes), so they
are always decoded with ``unquote_plus``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.model import ObjectRef


class EventShapeError(ValueError):
    """A record we cannot read at all (reported as a failed batch item, never silently dropped)."""


class _Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")
    name: str


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    key: str
    size: int | None = None
    etag: str | None = Field(default=None, alias="eTag")
    version_id: str | None = Field(default=None, alias="versionId")


class _StorageEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket: _Bucket
    object: _Object


class _StorageRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_name: str = Field(default="ObjectCreated:Put", alias="eventName")
    s3: _StorageEntity | None = None
    obs: _StorageEntity | None = None


def _is_object_created(event_name: str) -> bool:
    # S3: "ObjectCreated:Put"; OBS: "ObjectCreated:Post"; Alibaba-style "oss:ObjectCreated:…".
    return "ObjectCreated" in event_name


def object_refs_from_notification(payload: Mapping[str, Any]) -> list[ObjectRef]:
    """Objects created according to one S3/OBS notification (not SQS-wrapped)."""
    if payload.get("Event") == "s3:TestEvent":
        return []
    records = payload.get("Records")
    if not isinstance(records, list):
        raise EventShapeError("notification has no 'Records' list")
    refs: list[ObjectRef] = []
    for index, raw in enumerate(records):
        try:
            record = _StorageRecord.model_validate(raw)
        except ValidationError as exc:
            raise EventShapeError(
                f"record {index} is not an S3/OBS record: {exc.errors()[0]['msg']}"
            ) from exc
        entity = record.s3 or record.obs
        if entity is None:
            raise EventShapeError(f"record {index} has neither 's3' nor 'obs'")
        if not _is_object_created(record.event_name):
            continue
        refs.append(
            ObjectRef(
                bucket=entity.bucket.name,
                key=unquote_plus(entity.object.key),
                size=entity.object.size,
                etag=entity.object.etag.strip('"') if entity.object.etag else None,
                version_id=entity.object.version_id or None,
            )
        )
    return refs


def object_refs_from_message_body(body: str) -> list[ObjectRef]:
    """Objects named by one SQS message body holding an S3/OBS notification."""
    try:
        payload = json.loads(body)
    except json.JSONDecodeError as exc:
        raise EventShapeError(f"message body is not JSON: {exc.msg}") from exc
    if not isinstance(payload, dict):
        raise EventShapeError("message body is not a JSON object")
    # SNS → SQS fan-out wraps the notification once more.
    if payload.get("Type") == "Notification" and isinstance(payload.get("Message"), str):
        return object_refs_from_message_body(payload["Message"])
    return object_refs_from_notification(payload)

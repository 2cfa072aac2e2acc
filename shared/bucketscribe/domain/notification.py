"""Every upload-trigger shape → the objects created, one record at a time.

Handled shapes:
- S3 event notifications (``Records[].s3``), delivered directly or as an SQS message body (what
  the bucket → queue notification sends), also wrapped once more by SNS;
- the Huawei FunctionGraph OBS trigger (``Records[].s3`` or ``Records[].obs``);
- ``s3:TestEvent`` (sent when a notification is configured) → nothing.

A record that cannot be read (no bucket name, an empty key, a negative size, …) is reported as
that record's problem and the others go on; only a body that is not a notification at all (not
JSON, nested absurdly deep, no ``Records``) fails as a whole. Keys arrive URL-encoded (``+`` for
space, ``%2F``, UTF-8 percent escapes), so they are always decoded with ``unquote_plus``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe.domain.upload import ObjectRef

# Far more than any notification needs; a body nested deeper is refused before it is parsed.
MAX_NESTING = 32
MAX_BODY_BYTES = 256 * 1024


class EventShapeError(ValueError):
    """A body we cannot read at all (reported as that message's failure, never silently dropped)."""


class _Bucket(BaseModel):
    model_config = ConfigDict(extra="ignore")
    # S3's and OBS's naming rules, widened to S3's legacy names (capitals, underscores, up to 255
    # characters): a name outside them cannot be a bucket, so the record is unreadable.
    name: str = Field(min_length=3, max_length=255, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*[A-Za-z0-9]$")


class _Object(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    key: str = Field(min_length=1, max_length=4096)
    size: int | None = None
    etag: str | None = Field(default=None, alias="eTag", max_length=256)
    version_id: str | None = Field(default=None, alias="versionId", max_length=1024)


class _StorageEntity(BaseModel):
    model_config = ConfigDict(extra="ignore")
    bucket: _Bucket
    object: _Object


class _StorageRecord(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_name: str = Field(default="ObjectCreated:Put", alias="eventName")
    s3: _StorageEntity | None = None
    obs: _StorageEntity | None = None


class Notification(BaseModel):
    """What one notification names: the objects created, and the records that could not be read."""

    refs: list[ObjectRef] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def _is_object_created(event_name: str) -> bool:
    # S3: "ObjectCreated:Put"; OBS: "ObjectCreated:Post"; Alibaba-style "oss:ObjectCreated:…".
    return "ObjectCreated" in event_name


def _record_ref(index: int, raw: Any) -> ObjectRef | str | None:
    """The object one record names; a problem description; or None (not a creation)."""
    try:
        record = _StorageRecord.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"record {index} is not an S3/OBS record ({where}: {first['msg']})"
    entity = record.s3 or record.obs
    if entity is None:
        return f"record {index} has neither 's3' nor 'obs'"
    if not _is_object_created(record.event_name):
        return None
    key = unquote_plus(entity.object.key)
    if not key.strip():
        return f"record {index} names an empty key"
    size = entity.object.size
    return ObjectRef(
        bucket=entity.bucket.name,
        key=key,
        # A size the event gets wrong is only a hint: the object's own metadata is read later.
        size=size if size is not None and size >= 0 else None,
        etag=entity.object.etag.strip('"') if entity.object.etag else None,
        version_id=entity.object.version_id or None,
    )


def object_refs_from_notification(payload: Mapping[str, Any]) -> Notification:
    """Objects created according to one S3/OBS notification (not SQS-wrapped)."""
    if payload.get("Event") == "s3:TestEvent":
        return Notification()
    records = payload.get("Records")
    if not isinstance(records, list):
        raise EventShapeError("notification has no 'Records' list")
    notification = Notification()
    for index, raw in enumerate(records):
        parsed = _record_ref(index, raw)
        if isinstance(parsed, ObjectRef):
            notification.refs.append(parsed)
        elif isinstance(parsed, str):
            notification.problems.append(parsed)
    return notification


def object_refs_from_message_body(body: str) -> Notification:
    """Objects named by one SQS message body holding an S3/OBS notification."""
    payload = _load_json(body)
    if not isinstance(payload, dict):
        raise EventShapeError("message body is not a JSON object")
    # SNS → SQS fan-out wraps the notification once more.
    if payload.get("Type") == "Notification" and isinstance(payload.get("Message"), str):
        return object_refs_from_message_body(payload["Message"])
    return object_refs_from_notification(payload)


def _load_json(body: str) -> Any:
    if len(body.encode("utf-8", errors="replace")) > MAX_BODY_BYTES:
        raise EventShapeError(f"message body is larger than {MAX_BODY_BYTES} bytes")
    if _nesting(body) > MAX_NESTING:
        raise EventShapeError(f"message body is nested more than {MAX_NESTING} levels deep")
    try:
        return json.loads(body)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise EventShapeError(f"message body is not JSON: {getattr(exc, 'msg', type(exc).__name__)}") from exc


def _nesting(text: str) -> int:
    """The deepest bracket nesting outside strings (checked before parsing, which recurses)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest

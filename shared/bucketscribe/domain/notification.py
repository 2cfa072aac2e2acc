"""What an upload trigger says: the objects created, read one record at a time.

Every cloud's bucket notification is a list of records in the shape S3 made common
(``Records[].<entity>.bucket.name`` / ``.object.key``, ``eventName``); each cloud's folder says
under which entity keys its records carry the object (``clouds/<name>/events.py``) and unwraps
its own envelopes (a queue message's body, a topic's notification).

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
    # The object stores' bucket naming rules, widened to S3's legacy names (capitals, underscores, up to 255
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


class _Record(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)
    event_name: str = Field(default="ObjectCreated:Put", alias="eventName")


class Notification(BaseModel):
    """What one notification names: the objects created, and the records that could not be read."""

    refs: list[ObjectRef] = Field(default_factory=list)
    problems: list[str] = Field(default_factory=list)


def _is_object_created(event_name: str) -> bool:
    # "ObjectCreated:Put", "ObjectCreated:Post", "oss:ObjectCreated:…": each store words it its way.
    return "ObjectCreated" in event_name


def _record_ref(index: int, raw: Any, entities: tuple[str, ...]) -> ObjectRef | str | None:
    """The object one record names; a problem description; or None (not a creation)."""
    if not isinstance(raw, dict):
        return f"record {index} is not an object"
    entity_key = next((key for key in entities if key in raw), None)
    if entity_key is None:
        return f"record {index} has none of {', '.join(repr(key) for key in entities)}"
    try:
        record = _Record.model_validate(raw)
        entity = _StorageEntity.model_validate(raw[entity_key])
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"record {index} is not a bucket record ({entity_key}.{where}: {first['msg']})"
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


def refs_from_records(payload: Mapping[str, Any], *, entities: tuple[str, ...]) -> Notification:
    """Objects created according to one notification whose records carry the object under one of
    ``entities`` (each cloud names its own)."""
    records = payload.get("Records")
    if not isinstance(records, list):
        raise EventShapeError("notification has no 'Records' list")
    notification = Notification()
    for index, raw in enumerate(records):
        parsed = _record_ref(index, raw, entities)
        if isinstance(parsed, ObjectRef):
            notification.refs.append(parsed)
        elif isinstance(parsed, str):
            notification.problems.append(parsed)
    return notification


def load_json(body: str) -> Any:
    """A notification body parsed, refusing what no notification is (too large, nested absurdly)."""
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

"""Huawei Cloud's upload trigger → the objects created: FunctionGraph's OBS trigger event, whose
records carry the object under ``s3`` (the S3-compatible shape) or ``obs``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bucketscribe.domain.notification import EventShapeError, Notification, load_json, refs_from_records

ENTITIES = ("s3", "obs")


def object_refs_from_trigger(payload: Mapping[str, Any]) -> Notification:
    """Objects created according to one OBS trigger event (as FunctionGraph hands it over)."""
    return refs_from_records(payload, entities=ENTITIES)


def object_refs_from_record_body(body: str) -> Notification:
    """Objects named by the event a failure record kept (a JSON text of the trigger event)."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise EventShapeError("the event is not a JSON object")
    return object_refs_from_trigger(payload)

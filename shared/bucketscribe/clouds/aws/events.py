"""AWS's upload triggers → the objects created: S3 event notifications (``Records[].s3``),
delivered directly or as an SQS message body (what the bucket → queue notification sends), also
wrapped once more by SNS; ``s3:TestEvent`` (sent when a notification is configured) → nothing."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bucketscribe.domain.notification import EventShapeError, Notification, load_json, refs_from_records

ENTITIES = ("s3",)


def object_refs_from_notification(payload: Mapping[str, Any]) -> Notification:
    """Objects created according to one S3 notification (not SQS-wrapped)."""
    if payload.get("Event") == "s3:TestEvent":
        return Notification()
    return refs_from_records(payload, entities=ENTITIES)


def object_refs_from_message_body(body: str) -> Notification:
    """Objects named by one SQS message body holding an S3 notification (or SNS-wrapped one)."""
    payload = load_json(body)
    if not isinstance(payload, dict):
        raise EventShapeError("message body is not a JSON object")
    # SNS → SQS fan-out wraps the notification once more.
    if payload.get("Type") == "Notification" and isinstance(payload.get("Message"), str):
        return object_refs_from_message_body(payload["Message"])
    return object_refs_from_notification(payload)

"""What S3 puts in an upload's event that moto leaves out: the object's ``versionId`` in a
versioned bucket (AWS: "The version ID of the object, if the bucket is versioning-enabled").

The submit function trusts an event's size, ETag and version (it reads nothing from the bucket to
find out which upload it announces), so the local stack's events must carry what S3's do.
"""

from __future__ import annotations

from functools import wraps
from typing import Any

_PATCHED = "_bucketscribe_adds_version_ids"


def add_version_ids_to_moto_events() -> None:
    """Make moto's S3 event records name the object's version as S3's do (once per process)."""
    from moto.s3 import notifications

    original = notifications._get_s3_event
    if getattr(original, _PATCHED, False):
        return

    @wraps(original)
    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event: dict[str, Any] = original(event_name, bucket, key, notification_id)
        version = getattr(key, "version_id", None)
        if getattr(bucket, "is_versioned", False) and version and version != "null":
            for record in event["Records"]:
                record["s3"]["object"]["versionId"] = version
        return event

    setattr(with_version, _PATCHED, True)
    notifications._get_s3_event = with_version

"""FunctionGraph's failure records in OBS, read as dead letters (the ``DeadLetters`` port).

When the submit function fails an upload event on every asynchronous retry, FunctionGraph writes
a record to the function's failure destination: a JSON object whose ``request_payload`` is the
event the function was given, with ``request_context.request_id`` naming the invocation
(FunctionGraph user guide, "Asynchronous Notification Policy"). Each record under the prefix is
one dead letter; settling it deletes the object, as settling an SQS dead letter deletes the
message. A record that cannot be read passes on as it is, so the settling step logs it.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bucketscribe.clouds.huawei.events import object_refs_from_record_body
from bucketscribe.domain.notification import Notification
from bucketscribe.ports.dead_letters import DeadLetter

# Keys asked for per listing; the settling loop asks again until the prefix is empty.
MAX_LISTED = 100


class FailureRecordStore(Protocol):
    """What this adapter needs from the bucket (the OBS storage adapter has it)."""

    def list_keys(self, bucket: str, prefix: str, *, limit: int = 1000) -> list[str]: ...

    def get(self, bucket: str, key: str) -> bytes: ...

    def delete(self, bucket: str, key: str) -> None: ...


class _RequestContext(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_id: str | None = None


class _FailureRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")
    request_context: _RequestContext | None = None
    request_payload: str | dict[str, Any] | None = None


class FailedInvocations:
    def __init__(self, storage: FailureRecordStore, bucket: str, prefix: str) -> None:
        self._storage = storage
        self._bucket = bucket
        self._prefix = prefix

    def receive(self, max_messages: int) -> list[DeadLetter]:
        limit = max(1, min(max_messages, MAX_LISTED))
        keys = self._storage.list_keys(self._bucket, self._prefix, limit=limit)
        # A folder placeholder ("prefix/") is no record.
        return [self._letter(key) for key in keys if not key.endswith("/")]

    def read(self, letter: DeadLetter) -> Notification:
        return object_refs_from_record_body(letter.body)

    def delete(self, letter: DeadLetter) -> None:
        self._storage.delete(self._bucket, letter.receipt)

    def _letter(self, key: str) -> DeadLetter:
        raw = self._storage.get(self._bucket, key).decode("utf-8", errors="replace")
        message_id, body = key, raw
        try:
            record = _FailureRecord.model_validate_json(raw)
        except ValidationError:
            record = None
        if record is not None and record.request_payload is not None:
            payload = record.request_payload
            body = payload if isinstance(payload, str) else json.dumps(payload)
            if record.request_context and record.request_context.request_id:
                message_id = record.request_context.request_id
        return DeadLetter(message_id=message_id, body=body, receipt=key)

"""The event-bus port: a job's event put on the cloud's own bus or topic, for whoever subscribes
there (rules, queues, functions, e-mail). Each cloud's folder has its adapter; a deployment
without one configured publishes nothing."""

from __future__ import annotations

import json
from typing import Any, Protocol

from bucketscribe.domain.job_events import JobEvent

# What every bus carries as the event's text: the webhook payload plus its id (a bus has no
# header to put the id in), so one consumer can handle both and drop duplicates by ``id``.
SOURCE = "bucketscribe"
DETAIL_TYPE = "Transcript State Change"


class EventNotPublished(Exception):
    """The bus did not take the event (refused, throttled, unreachable): tried again later."""


class EventBus(Protocol):
    def publish(self, event: JobEvent) -> None:
        """Put ``event`` on the bus (``event_document``); raises ``EventNotPublished`` when the bus
        did not take it."""
        ...


def event_document(event: JobEvent) -> dict[str, Any]:
    """The event as a bus carries it: ``{"id", "type", "timestamp", "data"}``."""
    document: dict[str, Any] = {"id": event.id, **json.loads(event.body())}
    return document

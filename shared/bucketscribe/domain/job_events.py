"""What a job tells the outside world when it ends, and where each telling stands.

A job that becomes DONE or FAILED records one event (``transcript.completed`` or
``transcript.failed``) in the same write as its final state, with one delivery per channel the
deployment has: the profile's webhook, and the cloud's event bus. That record is what makes the
delivery durable (no thread and no queue holds it): the worker that ended the job delivers right
after the write, and whatever is still pending is delivered by the reconciler when due, backing
off, for at most ``DELIVERY_WINDOW`` after the job ended. Every attempt of an event carries the
same id and the same body, so a receiver drops the duplicates that at-least-once delivery brings.

The event says only what the job's own record says of its own upload: no other upload's data, no
presigned URL, no secret (an error message is redacted on its way into the job, and here again).

A job can end more than once: a result that arrives after the job failed at its deadline still
finishes it (``transcript.failed``, then ``transcript.completed``), and a re-driven job ends again.
Each end is an event of its own; what is still owed of an earlier one while the job runs again is
delivered once it has ended again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from bucketscribe.domain.redaction import redact
from bucketscribe.domain.transcript import Coverage, TranscriptWarning

# How long an event is delivered for after its job ended; then its delivery is given up (FAILED).
DELIVERY_WINDOW = timedelta(hours=24)
# After the n-th failed attempt the next one waits RETRY_DELAYS[n - 1] (the last one thereafter),
# never past the window's end: the schedule Standard Webhooks' reference sender uses, less its
# 5-second step, which a reconciler that runs every few minutes could not keep anyway. With the
# 24 h window: attempts at about 0, 1 min, 6 min, 36 min, 2.6 h, 7.6 h, 17.6 h and 24 h.
RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
)
# A job keeps its latest events (a re-driven job ends again): older ones that are settled go, so
# the record stays small however often the job is re-driven.
EVENTS_KEPT = 4
MAX_ERROR_CHARS = 300


class EventType(StrEnum):
    COMPLETED = "transcript.completed"
    FAILED = "transcript.failed"


class Channel(StrEnum):
    WEBHOOK = "webhook"  # the profile's signed webhook (Standard Webhooks)
    EVENT_BUS = "event_bus"  # the cloud's own event bus or topic


class DeliveryState(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"  # given up: refused for good, or still failing when the window ended


class EventError(BaseModel):
    """Why the job failed, as its error report says."""

    code: str
    message: str
    retryable: bool = False

    @field_validator("message")
    @classmethod
    def _without_credentials(cls, message: str) -> str:
        return redact(message)


class TranscriptEventData(BaseModel):
    """What a receiver is told of one upload's transcript (the event's ``data``)."""

    job_id: str
    state: Literal["DONE", "FAILED"]
    bucket: str
    key: str
    version_id: str | None = None
    etag: str | None = None
    profile: str
    provider: str
    model: str | None = None
    # Object keys in ``bucket`` (never URLs): the transcript's files, or the error report.
    outputs: list[str] = Field(default_factory=list)
    error_report: str | None = None
    # How long the recording is, where known.
    duration_ms: int | None = None
    coverage: Coverage | None = None
    warnings: list[TranscriptWarning] = Field(default_factory=list)
    error: EventError | None = None
    finished_at: datetime


class EventDelivery(BaseModel):
    """One event to one channel: where its delivery stands and when it is tried next."""

    channel: Channel
    state: DeliveryState = DeliveryState.PENDING
    # Attempts made (one that was claimed and never recorded, its worker dead, is not counted).
    attempts: int = Field(default=0, ge=0)
    # PENDING: when the next attempt is due. Before an attempt it is moved past the attempt's
    # end (a claim), so that no other worker makes the same attempt meanwhile.
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    # Why the last attempt failed (an HTTP status, a timeout, a refused address): no URL, no secret.
    last_error: str | None = None
    delivered_at: datetime | None = None

    @field_validator("last_error")
    @classmethod
    def _short_and_without_credentials(cls, error: str | None) -> str | None:
        return redact(error)[:MAX_ERROR_CHARS] if error else error

    def due(self, now: datetime) -> bool:
        return self.state is DeliveryState.PENDING and (
            self.next_attempt_at is None or self.next_attempt_at <= now
        )


class EventPayload(BaseModel):
    """The body every attempt of an event sends, as Standard Webhooks lays a payload out."""

    type: EventType
    timestamp: datetime
    data: TranscriptEventData


class JobEvent(BaseModel):
    """One event of a job, with its deliveries. ``id`` is the ``webhook-id`` of every attempt."""

    id: str
    type: EventType
    timestamp: datetime
    data: TranscriptEventData
    # Deliveries still failing then are given up.
    deliver_until: datetime
    deliveries: list[EventDelivery] = Field(default_factory=list)

    def body(self) -> bytes:
        """The payload's bytes, the same on every attempt (the signature covers them)."""
        payload = EventPayload(type=self.type, timestamp=self.timestamp, data=self.data)
        return payload.model_dump_json().encode("utf-8")

    def delivery(self, channel: Channel) -> EventDelivery | None:
        return next((d for d in self.deliveries if d.channel is channel), None)

    @property
    def settled(self) -> bool:
        return all(d.state is not DeliveryState.PENDING for d in self.deliveries)


def retry_at(attempts: int, now: datetime, until: datetime) -> datetime | None:
    """When to try again after ``attempts`` failed attempts, the last one ``now``; ``None``: the
    window is over, so the delivery is given up."""
    if attempts < 1 or now >= until:
        return None
    delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return min(now + delay, until)


def kept_events(events: list[JobEvent]) -> list[JobEvent]:
    """The latest ``EVENTS_KEPT`` events, and any older one still being delivered."""
    recent = {event.id for event in events[-EVENTS_KEPT:]}
    return [event for event in events if event.id in recent or not event.settled]


def next_delivery_at(events: list[JobEvent]) -> datetime | None:
    """When the earliest pending delivery is due; ``None`` when nothing is pending."""
    due = [
        delivery.next_attempt_at or event.timestamp
        for event in events
        for delivery in event.deliveries
        if delivery.state is DeliveryState.PENDING
    ]
    return min(due, default=None)

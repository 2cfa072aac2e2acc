"""Step: tell the outside world that a job ended, and keep telling it until it has heard.

Who delivers, and when (the event and its deliveries: ``domain/job_events.py``):

- The worker that writes a job's DONE or FAILED records the event in that same write
  (``announced``): one delivery per channel the deployment has (the profile's webhook, the cloud's
  event bus), each claimed by that worker for ``DELIVERY_CLAIM``. Right after the write (and after
  the outputs or the error report, so a receiver finds them) it delivers them once
  (``deliver_now``) and records how that went, with the time of the next attempt when it failed.
- The reconciler (``deliver_due``, every run) finds the finished jobs with a delivery due through
  the job store's index, claims those deliveries (a conditional write: of two workers only one
  makes an attempt), delivers and records. A worker that died mid-delivery left its claim, which
  runs out: the reconciler then makes the attempt.

A failed attempt (an answer other than 2xx, a timeout, a bus that refused) is tried again on
``RETRY_DELAYS``, until ``deliver_until`` (24 h after the job ended); an address the webhook may
not go to is given up at once. Every attempt of an event has the same id and body. Nothing here
raises into its caller: whatever goes wrong, the record says what is still owed.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import NamedTuple

from aws_lambda_powertools import Logger
from pydantic import BaseModel

from bucketscribe.domain.job import InvalidTransition, Job, JobState
from bucketscribe.domain.job_events import (
    Channel,
    DeliveryState,
    EventDelivery,
    EventError,
    EventType,
    JobEvent,
    TranscriptEventData,
    retry_at,
)
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.pipeline.steps.job_writes import apply, describe_error
from bucketscribe.ports.webhooks import WebhookNotDelivered, WebhookRefused

logger = Logger(child=True)

# How long a worker owns the deliveries it is about to make: longer than one attempt can take
# (the webhook's timeout through its redirects, the bus client's retries), so that nobody else
# makes the same attempt meanwhile; a worker that dies leaves them due when it runs out.
DELIVERY_CLAIM = timedelta(minutes=2)
# What one reconciler run delivers at most, and how many jobs' deliveries it makes side by side.
DUE_PER_RUN = 100
SIDE_BY_SIDE = 8


class Tried(NamedTuple):
    """How one attempt of one event to one channel went."""

    event_id: str
    channel: Channel
    error: str | None  # None: delivered
    give_up: bool = False  # refused for good (or nowhere to deliver to any more)


class DeliveryReport(BaseModel):
    delivered: int = 0
    failed: int = 0  # attempts that failed (each tried again later, or given up)
    given_up: int = 0
    left_for_next_run: int = 0
    # Jobs whose deliveries could not be looked at (the job store failed): left due.
    units_failed: int = 0


def channels_for(job: Job, ports: PipelinePorts) -> list[Channel]:
    """Where this deployment tells of ``job``'s end: its profile's webhook, the cloud's bus."""
    channels = []
    profile = ports.profiles.find(job.profile)
    if ports.webhooks is not None and profile is not None and profile.webhook_url:
        channels.append(Channel.WEBHOOK)
    if ports.event_bus is not None:
        channels.append(Channel.EVENT_BUS)
    return channels


def announced(ended: Job, ports: PipelinePorts, *, error_report: str | None = None) -> Job:
    """``ended`` (just DONE or FAILED, not yet written) with the event of its end to deliver to every
    channel the deployment has, claimed by the worker writing it; unchanged where there is none
    (and for a part: its end is told as its upload's). ``error_report``: where a FAILED job's
    report is written."""
    if ended.part_of is not None or ended.state not in (JobState.DONE, JobState.FAILED):
        return ended
    channels = channels_for(ended, ports)
    if not channels:
        return ended
    at = ended.finished_at or ended.updated_at
    event = JobEvent(
        id=_event_id(ended),
        type=EventType.COMPLETED if ended.state is JobState.DONE else EventType.FAILED,
        timestamp=at,
        data=event_data(ended, error_report),
        deliver_until=at + ports.limits.delivery_window,
        deliveries=[
            EventDelivery(channel=channel, next_attempt_at=at + DELIVERY_CLAIM) for channel in channels
        ],
    )
    return ended.announce(event)


def event_data(job: Job, error_report: str | None) -> TranscriptEventData:
    """What the event says: the job's own record of its own upload, and nothing else."""
    failed = job.state is JobState.FAILED
    return TranscriptEventData(
        job_id=job.id,
        state="FAILED" if failed else "DONE",
        bucket=job.source.bucket,
        key=job.source.key,
        version_id=job.source.version_id,
        etag=job.source.etag,
        profile=job.profile,
        provider=job.provider,
        model=job.model,
        outputs=[] if failed else list(job.outputs),
        error_report=error_report if failed else None,
        duration_ms=job.audio_ms,
        coverage=None if failed else job.coverage,
        warnings=[] if failed else list(job.warnings),
        error=EventError(**job.error.model_dump()) if failed and job.error else None,
        finished_at=job.finished_at or job.updated_at,
    )


def deliver_now(job: Job, ports: PipelinePorts) -> Job:
    """The worker that has just ended ``job`` (and written its outputs or report) delivers the event
    it recorded in that write, under the claim it wrote with it; returns the job as recorded
    afterwards. Never raises: what was not delivered is the reconciler's, when due."""
    latest = job.events[-1] if job.events else None
    if latest is None or latest.id != _event_id(job) or latest.settled:
        return job  # no event was recorded with this end (an older one is the reconciler's)
    try:
        tried = [_attempt(job, latest, delivery.channel, ports) for delivery in _pending(latest)]
        return _recorded(job, tried, ports) or job
    except Exception:
        logger.exception("Could not deliver a job's event; the reconciler will", extra={"job_id": job.id})
        return job


class _Handled(NamedTuple):
    tried: list[Tried]
    left: bool = False  # out of time: not looked at
    failed: bool = False  # the job store failed: left due


def deliver_due(
    ports: PipelinePorts, *, out_of_time: Callable[[], bool] = lambda: False, limit: int = DUE_PER_RUN
) -> DeliveryReport:
    """The reconciler's part: every finished job with a delivery due, claimed, delivered, recorded."""
    report = DeliveryReport()
    now = ports.clock()
    try:
        listed = ports.jobs.deliveries_due(now, limit=limit)
    except Exception:
        logger.exception("Could not read the jobs with events to deliver; the next run tries again")
        report.units_failed += 1
        return report

    def one(stale: Job) -> _Handled:
        if out_of_time():
            return _Handled([], left=True)
        try:
            return _Handled(_deliver_claimed(stale, now, ports))
        except Exception:
            logger.exception("Could not deliver a job's events; they stay due", extra={"job_id": stale.id})
            return _Handled([], failed=True)

    with ThreadPoolExecutor(max_workers=SIDE_BY_SIDE) as pool:
        for handled in pool.map(one, listed):
            report.left_for_next_run += handled.left
            report.units_failed += handled.failed
            for attempt in handled.tried:
                if attempt.error is None:
                    report.delivered += 1
                else:
                    report.failed += 1
                    report.given_up += attempt.give_up
    return report


def _deliver_claimed(stale: Job, now: datetime, ports: PipelinePorts) -> list[Tried]:
    """Claim ``stale``'s due deliveries as stored now, deliver them, record how it went."""
    current = ports.jobs.get(stale.id)
    if current is None:
        return []
    claimed = apply(ports.jobs, current, lambda job: job.with_deliveries(now, _claim(job, now)))
    if claimed is None:
        return []  # another worker claimed them first, nothing is due any more, or it runs again
    mine = {(event.id, channel) for event, channel in _due(current.events, now)}
    tried = [
        _attempt(claimed, event, delivery.channel, ports)
        for event in claimed.events
        for delivery in _pending(event)
        if (event.id, delivery.channel) in mine
    ]
    _recorded(claimed, tried, ports)
    return tried


def _event_id(job: Job) -> str:
    """The id of the event of ``job``'s end as written (unique: a re-driven job ends again, with
    another version)."""
    return f"msg_{job.id}_{job.version}"


def _pending(event: JobEvent) -> list[EventDelivery]:
    return [d for d in event.deliveries if d.state is DeliveryState.PENDING]


def _due(events: list[JobEvent], now: datetime) -> list[tuple[JobEvent, Channel]]:
    return [
        (event, delivery.channel) for event in events for delivery in event.deliveries if delivery.due(now)
    ]


def _claim(job: Job, now: datetime) -> list[JobEvent]:
    """``job``'s events with every due delivery claimed until ``DELIVERY_CLAIM`` from ``now``."""
    if not job.state.is_final:
        # Re-driven meanwhile: its worker owns it now, and what is owed goes when it ends again.
        raise InvalidTransition("the job is running again")
    events = job.events
    if not _due(events, now):
        raise InvalidTransition("no delivery is due")
    until = now + DELIVERY_CLAIM
    return [
        event.model_copy(
            update={
                "deliveries": [
                    d.model_copy(update={"next_attempt_at": until}) if d.due(now) else d
                    for d in event.deliveries
                ]
            }
        )
        for event in events
    ]


def _attempt(job: Job, event: JobEvent, channel: Channel, ports: PipelinePorts) -> Tried:
    """One attempt of ``event`` to ``channel``; how it went, never raising."""
    try:
        if channel is Channel.WEBHOOK:
            profile = ports.profiles.find(job.profile)
            if ports.webhooks is None or profile is None or not profile.webhook_url:
                return Tried(event.id, channel, f"profile {job.profile!r} no longer has a webhook", True)
            ports.webhooks.send(profile.webhook_url, profile.webhook_secret_name, event)
        else:
            if ports.event_bus is None:
                return Tried(event.id, channel, "this deployment no longer publishes events", True)
            ports.event_bus.publish(event)
    except WebhookRefused as refused:
        return Tried(event.id, channel, str(refused), True)
    except WebhookNotDelivered as failed:
        error = str(failed)
    except Exception as unexpected:
        error = describe_error(unexpected)
    else:
        return Tried(event.id, channel, None)
    # The window's last attempt failing ends the delivery too.
    return Tried(event.id, channel, error, give_up=ports.clock() >= event.deliver_until)


def _recorded(job: Job, tried: list[Tried], ports: PipelinePorts) -> Job | None:
    """Write how ``tried`` went (each delivery still pending as the job stands now)."""
    if not tried:
        return None
    now = ports.clock()
    for attempt in tried:
        _tell(job, attempt, ports)
    outcomes = {(attempt.event_id, attempt.channel): attempt for attempt in tried}

    def record(current: Job) -> Job:
        events = [
            event.model_copy(
                update={
                    "deliveries": [
                        _after(event, d, outcomes[(event.id, d.channel)], now)
                        if d.state is DeliveryState.PENDING and (event.id, d.channel) in outcomes
                        else d
                        for d in event.deliveries
                    ]
                }
            )
            for event in current.events
        ]
        return current.with_deliveries(now, events)

    return apply(ports.jobs, job, record)


def _after(event: JobEvent, delivery: EventDelivery, tried: Tried, now: datetime) -> EventDelivery:
    attempts = delivery.attempts + 1
    if tried.error is None:
        changes: dict[str, object] = {
            "state": DeliveryState.DELIVERED,
            "delivered_at": now,
            "next_attempt_at": None,
            "last_error": None,
        }
    else:
        again = None if tried.give_up else retry_at(attempts, now, event.deliver_until)
        changes = {
            "state": DeliveryState.PENDING if again else DeliveryState.FAILED,
            "next_attempt_at": again,
            "last_error": tried.error,
        }
    # Validated afresh: the error text is redacted and cut to size on its way in.
    return EventDelivery.model_validate(
        {**delivery.model_dump(), "attempts": attempts, "last_attempt_at": now, **changes}
    )


def _tell(job: Job, tried: Tried, ports: PipelinePorts) -> None:
    where = {"job_id": job.id, "event_id": tried.event_id, "channel": tried.channel.value}
    if tried.error is None:
        logger.info("Event delivered", extra=where)
        return
    ports.count("WebhookDeliveriesFailed" if tried.channel is Channel.WEBHOOK else "EventPublishesFailed", 1)
    if tried.give_up:
        logger.error("Event delivery given up", extra={**where, "reason": tried.error})
    else:
        logger.warning("Event delivery failed; tried again later", extra={**where, "reason": tried.error})

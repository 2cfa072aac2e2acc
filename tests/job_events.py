"""A job event as tests need one: a finished (or failed) upload's, owed to one channel."""

from __future__ import annotations

from datetime import UTC, datetime

from bucketscribe.domain.job_events import Channel, EventDelivery, EventType, JobEvent, TranscriptEventData

ENDED = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def sample_event(
    job_id: str = "0f" * 16,
    *,
    failed: bool = False,
    key: str = "incoming/calls/2026-12-07 agent+42 ünïcode.wav",
    channel: Channel = Channel.WEBHOOK,
) -> JobEvent:
    data = TranscriptEventData(
        job_id=job_id,
        state="FAILED" if failed else "DONE",
        bucket="recordings",
        key=key,
        version_id="v3",
        profile="default",
        provider="sis",
        outputs=[] if failed else [f"transcripts/{key.removeprefix('incoming/')}.txt"],
        duration_ms=61_500,
        finished_at=ENDED,
    )
    return JobEvent(
        id=f"msg_{job_id}_7",
        type=EventType.FAILED if failed else EventType.COMPLETED,
        timestamp=ENDED,
        data=data,
        deliver_until=ENDED,
        deliveries=[EventDelivery(channel=channel)],
    )

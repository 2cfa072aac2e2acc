"""What the use cases are given: ports plus the settings that shape their decisions.

Function entry points build one of these from the environment; tests build one
from in-memory fakes. No use case imports an SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job_events import DELIVERY_WINDOW
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.ports.event_bus import EventBus
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.media_tools import MediaTools
from bucketscribe.ports.provider import Provider
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.ports.webhooks import WebhookSender

TimeLeft = Callable[[], timedelta | None]
"""What is left of this run's time, after the margin kept to record what was done; None: no limit."""


@dataclass(frozen=True)
class Limits:
    # The largest upload taken at all; one over its provider's limits is cut into parts.
    max_media_bytes: int = 4 * 1024**3
    max_media_duration_s: int = 24 * 3600
    # The largest object made for a provider, where local scratch space is tighter than its limit.
    max_part_bytes: int | None = None
    presign_expiry_s: int = 12 * 3600
    # First reconcile look at a submitted job; callbacks normally beat it. Later looks back off
    # exponentially up to the cap; a job still unfinished at the deadline fails with the reason.
    first_check_after: timedelta = timedelta(minutes=10)
    max_check_interval: timedelta = timedelta(minutes=30)
    job_deadline: timedelta = timedelta(hours=12)
    # How long one worker owns a job while preparing and submitting it. Shorter than the queue's
    # visibility timeout (checked when the settings load), so a dead worker's job is taken over.
    claim_lease: timedelta = timedelta(minutes=5)
    # How long a worker owns a job while writing its outputs (the outputs are written once).
    finish_lease: timedelta = timedelta(minutes=2)
    # A provider that refused a submission for now (throttled, busy, unreachable before sending)
    # is asked again after this, doubling up to max_check_interval, at most max_submit_attempts
    # times; then the job fails with the last reason (re-drive it with `bucketscribe redrive`).
    submit_retry_after: timedelta = timedelta(minutes=1)
    max_submit_attempts: int = 8
    # A provider whose quota is full: its uploads wait in the queue (asked again after
    # capacity_retry_after, by the reconciler or when one of its tasks finishes) for at most
    # capacity_wait, instead of failing after max_submit_attempts refusals.
    capacity_retry_after: timedelta = timedelta(minutes=1)
    capacity_wait: timedelta = timedelta(hours=72)
    # Provider jobs one upload may cost (each attempt the provider may have acted on counts: an
    # answer lost, a worker dead after sending, an expired result); then the job fails with the
    # reason, and a re-drive is the operator's choice to pay again.
    max_provider_jobs: int = 2
    # A submission whose answer was lost: the provider's listing is consulted after
    # search_delay (time for the task to show up); without a listing only the attempt's
    # callback is evidence, awaited for evidence_wait before a new attempt is made.
    search_delay: timedelta = timedelta(seconds=30)
    evidence_wait: timedelta = timedelta(hours=1)
    # The provider's clock may differ from ours by this much when matching task creation times.
    clock_skew: timedelta = timedelta(minutes=5)
    # Callback URLs stop working this long after their attempt started (deadline + retention).
    callback_token_ttl: timedelta = timedelta(hours=12 + 72)
    # Real-time mode: the longest a worker may spend streaming one upload (the submit function's
    # timeout less its margin); longer uploads are refused for the mode or sent to file transcription.
    realtime_budget: timedelta = timedelta(seconds=240)
    # A job's event (webhook, event bus) is delivered for this long after the job ended.
    delivery_window: timedelta = DELIVERY_WINDOW
    # How many of an invocation's uploads (or of a task's jobs) are worked on at once: their
    # header reads, job writes and one-file provider submissions (steps/side_by_side.py).
    side_by_side: int = 16


@dataclass
class PipelinePorts:
    storage: ObjectStorage
    jobs: JobStore
    providers: Mapping[str, Provider]
    signer: CallbackSigner
    layout: OutputLayout
    profiles: ProfileSet
    callback_base_url: str
    limits: Limits = field(default_factory=Limits)
    # None where PyAV is not installed: uploads then go to the provider as they are, or are
    # refused with the reason when it cannot take them.
    media_tools: MediaTools | None = None
    # None where no queue feeds the submit function (a bucket that triggers it directly).
    dead_letters: DeadLetters | None = None
    # Where jobs' ends are told: the profiles' webhooks (None where no profile has one) and the
    # cloud's event bus (None where the deployment names none).
    webhooks: WebhookSender | None = None
    event_bus: EventBus | None = None
    clock: Callable[[], datetime] = utc_now
    # Adds to a metric by name (the deployed functions' metrics; nothing where none are kept).
    count: Callable[[str, int], None] = lambda name, value: None

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise LookupError(f"provider {name!r} is not configured in this deployment") from None

"""The job: one per upload, and the one state machine every use case moves it through.

```
ACCEPTED ─start_attempt─> SUBMITTING(attempt n) ─bind_task─> SUBMITTED(task id) ─finish─> DONE
   ▲  │                        │ the call ended without a clear answer (timeout, 5xx, our write
   │  │                        │ failed, the worker died): attempt n is UNCERTAIN; evidence (its
   │  │                        │ callback, the provider's own records) binds its task later, or
   │  │                        └─ after a bounded wait with none ─abandon_attempt─> ACCEPTED
   │  │  refused for certain (throttled, busy) ─attempt_refused─> ACCEPTED (retried later)
   │  └─ refused input / exhausted retries / deadline ─fail─> FAILED(reason) + .error.json
   └─ result expired at the provider (once) / a deliberate re-drive of a FAILED job
DONE arriving after FAILED(deadline) wins.
```

An upload over its provider's limits is cut into parts (``pipeline/parts.py``): its job goes
``ACCEPTED ─split_into_parts─> SUBMITTED`` with no attempt of its own, and each part is a job of
its own (``part_of``), with its own attempts, so every part gets the whole exactly-once
machinery; the upload's job finishes (merged transcript) when all its parts are DONE, and fails
with the reason when one of them fails.

Every transition returns a new ``Job`` with ``version`` one higher; the job store writes it only
if the stored copy still has the version it was derived from (optimistic concurrency), so a
stale copy or a racing writer can never overwrite newer progress. A transition that the current
state does not allow raises ``InvalidTransition`` instead of writing anything.

A new upload's job is a draft (held by the worker preparing it, never stored as such) until its
first transition is written: that write creates it, conditionally, so one write both creates the
job and records its first step (the first attempt's intent, or its failure), and an upload
handed back before anything was decided costs no write at all.

A lease (``claimed_until``) marks a worker that is submitting or finishing the job: nobody else
takes the job over until it runs out, and the reconciler looks at the job when it does, so a
worker that dies never leaves the job stranded.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, Field, field_validator
from pydantic.json_schema import SkipJsonSchema

from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job_events import JobEvent, kept_events, next_delivery_at
from bucketscribe.domain.media_routing import MediaProbe, RouteDecision
from bucketscribe.domain.redaction import redact
from bucketscribe.domain.transcript import Coverage, TranscriptWarning
from bucketscribe.domain.upload import ObjectRef


class JobState(StrEnum):
    ACCEPTED = "ACCEPTED"
    SUBMITTING = "SUBMITTING"
    SUBMITTED = "SUBMITTED"
    DONE = "DONE"
    FAILED = "FAILED"
    # A later upload of the same key came before this one's outputs were written: they belong to
    # the latest upload, so this job wrote (and deleted) nothing beside it.
    SUPERSEDED = "SUPERSEDED"

    @property
    def is_final(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.SUPERSEDED)


class JobError(BaseModel):
    """Why a job failed, in words a user can act on, plus the provider's own code."""

    code: str
    message: str
    retryable: bool = False

    @field_validator("message")
    @classmethod
    def _without_credentials(cls, message: str) -> str:
        # What a provider, an SDK or the media probe said may name a presigned URL or a callback
        # URL: the error report, the status API and the logs get it without its credentials.
        return redact(message)


# The upload already cost as many provider jobs as it may (``Limits.max_provider_jobs``).
PROVIDER_JOBS_EXHAUSTED = "PROVIDER_JOBS_EXHAUSTED"
# A job failed with one of these codes may still have a task at the provider whose result can
# arrive later; when it does, the result wins and replaces the error report.
LATE_RESULT_CODES = frozenset({"PROVIDER_TIMEOUT", PROVIDER_JOBS_EXHAUSTED})


class AttemptState(StrEnum):
    IN_FLIGHT = "IN_FLIGHT"  # intent recorded; the provider has not answered (or the worker died)
    UNCERTAIN = "UNCERTAIN"  # the call ended without a clear answer: resolved from evidence
    ACCEPTED = "ACCEPTED"  # the provider created task ``task_id`` for it
    REFUSED = "REFUSED"  # the provider certainly created nothing (throttled, busy, refused)
    ABANDONED = "ABANDONED"  # no evidence of a task within the bound; the next attempt follows
    EXPIRED = "EXPIRED"  # its result expired at the provider before we fetched it

    @property
    def unresolved(self) -> bool:
        """Whether the provider may hold a task for this attempt that we have not bound yet."""
        return self in (AttemptState.IN_FLIGHT, AttemptState.UNCERTAIN, AttemptState.ABANDONED)


class StreamMetrics(BaseModel):
    """How a real-time stream went, as the service's SDK measures it (real-time mode only)."""

    # From the first audio frame sent to the first result (interim or final) received.
    first_package_ms: int | None = None
    # From the end of the audio (finish-task) to the task's end: the service's tail latency.
    last_package_ms: int | None = None
    audio_ms: int = Field(default=0, ge=0)
    # From the first audio frame to the task's end.
    elapsed_ms: int = Field(default=0, ge=0)

    @property
    def realtime_factor(self) -> float | None:
        """Streaming time over audio time: 1.0 is as long as the recording lasts."""
        return self.elapsed_ms / self.audio_ms if self.audio_ms else None


class Attempt(BaseModel):
    """One submission of the job to its provider (at most one provider task; in real-time mode,
    one stream: ``task_id`` names its task(s) and ``stream`` holds its delays)."""

    number: int = Field(ge=1)
    state: AttemptState = AttemptState.IN_FLIGHT
    reason: str = "upload"
    started_at: datetime
    ended_at: datetime | None = None
    task_id: str | None = None
    # Which file of a multi-file provider task is ours (host + path of the media URL).
    provider_file: str | None = None
    # How the task became known: the submit answer, the attempt's callback, the provider's listing,
    # or the end of the attempt's own stream (real-time mode).
    bound_by: str | None = None
    error: JobError | None = None
    stream: StreamMetrics | None = None
    # Abandoned because the provider's own records (its task listing) show no task for it: it
    # cost nothing, so it does not count against the upload's provider jobs.
    listed_none: bool = False


class PartRef(BaseModel):
    """One part of an upload cut to fit its provider: its job, its media, where it lies."""

    index: int = Field(ge=1)
    job_id: str
    key: str  # the part's media object (a copy or re-encode of that stretch of the upload)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)


class PartOf(BaseModel):
    """What a part's job belongs to: the upload's job, and the stretch of the upload it holds."""

    parent_id: str
    index: int = Field(ge=1)
    count: int = Field(ge=1)
    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)


class InvalidTransition(RuntimeError):
    """The job's current state does not allow the change; nothing was written."""


class Job(BaseModel):
    id: str
    source: ObjectRef
    profile: str = "default"
    provider: str
    model: str | None = None
    state: JobState = JobState.ACCEPTED
    # Bumped by every transition; the store writes only over the version a change was made from.
    version: int = 0
    # A new upload's job not stored yet (``drafted_by``); never itself stored or shown.
    draft: SkipJsonSchema[bool] = Field(default=False, exclude=True)
    attempts: list[Attempt] = Field(default_factory=list)
    # The object actually sent to the provider when it is not the upload itself
    # (the audio of a video copied into an M4A, say).
    media_key: str | None = None
    # What the upload holds (probed once) and how it reaches the provider (media/routing.py).
    media: MediaProbe | None = None
    media_route: RouteDecision | None = None
    # An upload over its provider's limits: its parts, each a job of its own.
    parts: list[PartRef] = Field(default_factory=list)
    # A part's job: the upload's job it belongs to and where in the upload it lies.
    part_of: PartOf | None = None
    error: JobError | None = None
    outputs: list[str] = Field(default_factory=list)
    # SUPERSEDED: the job of the later upload of the key that replaced this one.
    superseded_by: str | None = None
    # How much detected speech the transcript's text covers, and what a reader should know
    # (speech without text, long gaps): copied from the written transcript.
    coverage: Coverage | None = None
    warnings: list[TranscriptWarning] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now)
    submitted_at: datetime | None = None
    finished_at: datetime | None = None
    # When the reconciler should next look at this job (unfinished jobs only) and how many
    # times it has looked since the last change of state.
    next_check_at: datetime | None = None
    checks: int = 0
    # A worker submitting or finishing the job owns it until then; ``claimed_by`` names the
    # worker, so one whose lease ran out cannot carry on over another that took the job over.
    claimed_until: datetime | None = None
    claimed_by: str | None = None
    redrives: int = 0
    # How many workers have begun writing the outputs: more than one means an earlier one died
    # (or lost its lease) part-way, and some outputs may already be there.
    finishings: int = 0
    # Since when the job has been trying (its creation, or its latest re-drive): deadlines count from here.
    active_since: datetime = Field(default_factory=utc_now)
    # Why the next attempt will be made (set when the job goes back to ACCEPTED).
    next_attempt_reason: str = "upload"
    # Waiting for the provider's capacity (its concurrency or rate quota was full): since when,
    # and how many times it was turned away. Waiting is bounded by its own limit, not the
    # deadline, and leaves no attempt behind (nothing was created).
    waiting_since: datetime | None = None
    capacity_waits: int = 0
    # What the job told the outside world when it ended (webhook, event bus) and where each
    # delivery stands: written with the final state, delivered until done (domain/job_events.py).
    events: list[JobEvent] = Field(default_factory=list)

    @classmethod
    def for_upload(
        cls, source: ObjectRef, *, profile: str, provider: str, model: str | None, now: datetime
    ) -> Job:
        return cls(
            id=source.job_id(),
            source=source,
            profile=profile,
            provider=provider,
            model=model,
            created_at=now,
            updated_at=now,
            active_since=now,
            next_check_at=now,
        )

    def drafted_by(self, now: datetime, *, until: datetime, owner: str) -> Job:
        """This new upload's job held by the worker preparing it, not stored yet: its first written
        transition creates it."""
        self._require(self.version == 0 and self.state is JobState.ACCEPTED, "be drafted")
        return self.model_copy(
            update={"draft": True, "claimed_until": until, "claimed_by": owner, "next_check_at": until}
        )

    @classmethod
    def for_part(cls, parent: Job, part: PartRef, source: ObjectRef, *, now: datetime) -> Job:
        """The job of one part of ``parent``'s upload; ``source`` is the part's media object."""
        return cls(
            id=part.job_id,
            source=source,
            profile=parent.profile,
            provider=parent.provider,
            model=parent.model,
            part_of=PartOf(
                parent_id=parent.id,
                index=part.index,
                count=len(parent.parts),
                start_ms=part.start_ms,
                end_ms=part.end_ms,
            ),
            created_at=now,
            updated_at=now,
            active_since=now,
            next_check_at=now,
        )

    # ----- what the job knows ------------------------------------------------------------------

    @property
    def current_attempt(self) -> Attempt | None:
        return self.attempts[-1] if self.attempts else None

    def attempt(self, number: int) -> Attempt | None:
        return next((a for a in self.attempts if a.number == number), None)

    @property
    def bound_attempt(self) -> Attempt | None:
        """The latest attempt whose provider task is known and still worth asking about."""
        return next((a for a in reversed(self.attempts) if a.state is AttemptState.ACCEPTED), None)

    @property
    def provider_task_id(self) -> str | None:
        bound = self.bound_attempt
        return bound.task_id if bound else None

    @property
    def provider_file(self) -> str | None:
        bound = self.bound_attempt
        return bound.provider_file if bound else None

    def task_ids(self) -> set[str]:
        """Every provider task ever bound to this job (a late result of any of them counts)."""
        return {a.task_id for a in self.attempts if a.task_id}

    def leased(self, now: datetime) -> bool:
        return self.claimed_until is not None and self.claimed_until > now

    def attempts_in(self, *states: AttemptState) -> int:
        return sum(1 for a in self.attempts if a.state in states)

    @property
    def audio_ms(self) -> int | None:
        """How long the audio the provider is sent lasts, where known: the upload's probe, or a
        part's stretch of it."""
        if self.part_of is not None:
            return self.part_of.end_ms - self.part_of.start_ms
        return self.media.duration_ms if self.media is not None else None

    @property
    def provider_jobs(self) -> int:
        """Attempts since the job last began trying (its upload, or a re-drive) that may have made
        the provider start a job — every one but those it certainly refused or whose provider lists no
        task for it: what was paid for."""
        return sum(
            1
            for a in self.attempts
            if a.state is not AttemptState.REFUSED
            and not (a.state is AttemptState.ABANDONED and a.listed_none)
            and a.started_at >= self.active_since
        )

    @property
    def next_delivery_at(self) -> datetime | None:
        """When the earliest pending delivery of the job's events is due (``None``: none pending)."""
        return next_delivery_at(self.events)

    @property
    def deadline_from(self) -> datetime:
        """Where the job's deadline counts from: the provider's start on it, or since it is trying."""
        if self.state is JobState.SUBMITTED and self.submitted_at is not None:
            return self.submitted_at
        return self.active_since

    @property
    def accepts_late_result(self) -> bool:
        return (
            self.state is JobState.FAILED and self.error is not None and self.error.code in LATE_RESULT_CODES
        )

    # ----- transitions -------------------------------------------------------------------------

    def _next(self, now: datetime, **changes: object) -> Job:
        return self.model_copy(update={"version": self.version + 1, "updated_at": now, **changes})

    def _require(self, allowed: bool, what: str) -> None:
        if not allowed:
            attempt = self.current_attempt
            where = f"{self.state.value}" + (
                f", attempt {attempt.number} {attempt.state.value}" if attempt else ""
            )
            raise InvalidTransition(f"job {self.id} cannot {what} while {where}")

    def _with_attempt(self, number: int, **changes: object) -> list[Attempt]:
        return [a.model_copy(update=changes) if a.number == number else a for a in self.attempts]

    def claim(self, now: datetime, *, until: datetime, owner: str) -> Job:
        """A worker takes the job over to prepare and submit it (nobody else meanwhile)."""
        self._require(self.state is JobState.ACCEPTED and not self.leased(now), "be claimed")
        return self._next(now, claimed_until=until, claimed_by=owner, next_check_at=until)

    def _owned_by(self, owner: str) -> bool:
        return self.claimed_by == owner

    def release(self, now: datetime, *, retry_at: datetime, owner: str) -> Job:
        """Give up a claim without submitting (an unexpected error): look again at ``retry_at``."""
        self._require(self.state is JobState.ACCEPTED and self._owned_by(owner), "be released")
        return self._next(now, claimed_until=None, claimed_by=None, next_check_at=retry_at)

    def route_to(self, now: datetime, *, provider: str, model: str | None, owner: str) -> Job:
        """Send the job to another provider before any attempt (a real-time profile hands uploads
        too long to stream to file transcription)."""
        self._require(
            self.state is JobState.ACCEPTED and self._owned_by(owner) and not self.attempts,
            "change its provider",
        )
        # How the media reaches a provider was decided for the old one: decided again (probe kept).
        return self._next(now, provider=provider, model=model, media_route=None, media_key=None)

    def with_media(
        self,
        now: datetime,
        *,
        probe: MediaProbe,
        route: RouteDecision,
        media_key: str | None,
        owner: str,
    ) -> Job:
        """Remember what the upload holds, how it goes to the provider and the media made for it,
        so a retry reuses them."""
        self._require(self.state is JobState.ACCEPTED and self._owned_by(owner), "record its media")
        return self._next(now, media=probe, media_route=route, media_key=media_key)

    def split_into_parts(
        self,
        now: datetime,
        *,
        parts: list[PartRef],
        probe: MediaProbe | None,
        route: RouteDecision | None,
        check_at: datetime,
        owner: str,
    ) -> Job:
        """The upload is cut into parts, each submitted as a job of its own: this job waits for
        them (SUBMITTED, with no attempt of its own) and is looked at again at ``check_at``."""
        self._require(
            self.state is JobState.ACCEPTED and self._owned_by(owner) and bool(parts), "be split into parts"
        )
        return self._next(
            now,
            state=JobState.SUBMITTED,
            parts=parts,
            media=probe,
            media_route=route,
            submitted_at=now,
            next_check_at=check_at,
            checks=0,
            claimed_until=None,
            claimed_by=None,
            error=None,
        )

    def start_attempt(
        self, now: datetime, *, lease_until: datetime, owner: str, provider_file: str | None = None
    ) -> Job:
        """The durable intent to submit, written before the provider is called, by the worker that
        claimed the job. ``provider_file`` names the media as the provider will see it, so a task
        found later can be matched."""
        self._require(self.state is JobState.ACCEPTED and self._owned_by(owner), "start an attempt")
        attempt = Attempt(
            number=len(self.attempts) + 1,
            reason=self.next_attempt_reason,
            started_at=now,
            provider_file=provider_file,
        )
        return self._next(
            now,
            state=JobState.SUBMITTING,
            attempts=[*self.attempts, attempt],
            claimed_until=lease_until,
            next_check_at=lease_until,
        )

    def bind_task(
        self,
        now: datetime,
        *,
        number: int,
        task_id: str,
        provider_file: str | None,
        check_at: datetime,
        bound_by: str,
        stream: StreamMetrics | None = None,
        owner: str | None = None,
    ) -> Job:
        """Attempt ``number`` created provider task ``task_id`` (its answer, callback or a listing,
        or in real-time mode its finished stream, with the stream's ``stream`` metrics).

        An abandoned attempt's task found late is bound too: its result is as good as any, and the
        lease of the attempt in flight is kept. ``owner``: the worker binding its own attempt, whose
        lease ends here even when the job is SUBMITTED already (by such a late task), so that it
        can go on to write the outputs.
        """
        attempt = self.attempt(number)
        self._require(
            attempt is not None
            and attempt.state.unresolved
            and (not self.state.is_final or self.accepts_late_result),
            "bind a task",
        )
        attempts = self._with_attempt(
            number,
            state=AttemptState.ACCEPTED,
            task_id=task_id,
            provider_file=provider_file,
            bound_by=bound_by,
            ended_at=now,
            stream=stream,
        )
        if self.state.is_final:
            # A late task of a job that gave up on it: recorded, so its result can still finish it.
            return self._next(now, attempts=attempts)
        if self.state is JobState.SUBMITTED:
            if owner is not None and self.claimed_by == owner:
                return self._next(now, attempts=attempts, claimed_until=None, claimed_by=None)
            return self._next(now, attempts=attempts)
        current = self.current_attempt
        keep_lease = current is not None and current.number != number and self.leased(now)
        return self._next(
            now,
            state=JobState.SUBMITTED,
            waiting_since=None,
            attempts=attempts,
            submitted_at=now,
            next_check_at=check_at,
            checks=0,
            claimed_until=self.claimed_until if keep_lease else None,
            claimed_by=self.claimed_by if keep_lease else None,
            error=None,
        )

    def _submitting_attempt(self, what: str, *states: AttemptState) -> Attempt:
        """The current attempt of a SUBMITTING job, if it is in one of ``states``."""
        attempt = self.current_attempt
        self._require(
            self.state is JobState.SUBMITTING and attempt is not None and attempt.state in states, what
        )
        assert attempt is not None
        return attempt

    def _back_to_accepted(
        self, now: datetime, *, attempts: list[Attempt], at: datetime, reason: str, **changes: object
    ) -> Job:
        """Ready for the next attempt at ``at``, nobody's claim on it."""
        return self._next(
            now,
            state=JobState.ACCEPTED,
            attempts=attempts,
            claimed_until=None,
            claimed_by=None,
            next_check_at=at,
            next_attempt_reason=reason,
            **changes,
        )

    def wait_for_capacity(self, now: datetime, error: JobError, *, retry_at: datetime, owner: str) -> Job:
        """The provider's quota is full: back in the queue until ``retry_at``. An attempt the
        provider turned away is dropped (it certainly created nothing), so a long wait does not
        grow the record; a job this worker holds and had not sent yet waits the same way."""
        if self.state is JobState.SUBMITTING:
            attempt = self._submitting_attempt("wait for capacity", AttemptState.IN_FLIGHT)
            attempts = [a for a in self.attempts if a.number != attempt.number]
        else:
            self._require(self.state is JobState.ACCEPTED and self._owned_by(owner), "wait for capacity")
            attempts = self.attempts
        return self._back_to_accepted(
            now,
            attempts=attempts,
            at=retry_at,
            reason=self.next_attempt_reason,
            error=error,
            waiting_since=self.waiting_since or now,
            capacity_waits=self.capacity_waits + 1,
        )

    def attempt_refused(self, now: datetime, error: JobError, *, retry_at: datetime) -> Job:
        """The provider certainly created nothing (throttled, busy): back to ACCEPTED, retried later."""
        attempt = self._submitting_attempt("record a refused attempt", AttemptState.IN_FLIGHT)
        attempts = self._with_attempt(attempt.number, state=AttemptState.REFUSED, error=error, ended_at=now)
        return self._back_to_accepted(
            now, attempts=attempts, at=retry_at, reason=f"retry after {error.code}", error=error
        )

    def attempt_uncertain(self, now: datetime, error: JobError, *, check_at: datetime) -> Job:
        """The call ended without a clear answer: the provider may or may not have a task."""
        attempt = self._submitting_attempt("record an uncertain attempt", AttemptState.IN_FLIGHT)
        attempts = self._with_attempt(attempt.number, state=AttemptState.UNCERTAIN, error=error)
        return self._next(now, attempts=attempts, claimed_until=None, claimed_by=None, next_check_at=check_at)

    def abandon_attempt(self, now: datetime, *, why: str, listed_none: bool = False) -> Job:
        """No evidence of a task within the bound: the next attempt may start (a late task of this
        one is still recognised and bound). ``listed_none``: the provider's listing shows none."""
        attempt = self._submitting_attempt(
            "abandon its attempt", AttemptState.IN_FLIGHT, AttemptState.UNCERTAIN
        )
        self._require(not self.leased(now), "abandon its attempt under a live lease")
        cause = f"after {attempt.error.code}" if attempt.error else "after the worker stopped"
        error = JobError(code="NO_EVIDENCE", message=f"{why} ({cause})", retryable=True)
        attempts = self._with_attempt(
            attempt.number, state=AttemptState.ABANDONED, error=error, ended_at=now, listed_none=listed_none
        )
        reason = f"no evidence that attempt {attempt.number} reached the provider"
        return self._back_to_accepted(now, attempts=attempts, at=now, reason=reason)

    def result_expired(self, now: datetime, error: JobError) -> Job:
        """The provider dropped the result before we fetched it: the upload gets one new attempt."""
        attempt = self.bound_attempt
        self._require(self.state is JobState.SUBMITTED and attempt is not None, "expire its result")
        assert attempt is not None
        attempts = self._with_attempt(attempt.number, state=AttemptState.EXPIRED, error=error, ended_at=now)
        reason = f"the result of attempt {attempt.number} expired at the provider"
        return self._back_to_accepted(now, attempts=attempts, at=now, reason=reason, checks=0)

    def begin_finishing(self, now: datetime, *, until: datetime, owner: str) -> Job:
        """A worker takes the right to write the outputs (so they are written once)."""
        self._require(
            (not self.state.is_final or self.accepts_late_result) and not self.leased(now), "begin finishing"
        )
        return self._next(now, claimed_until=until, claimed_by=owner, finishings=self.finishings + 1)

    def finish(
        self,
        now: datetime,
        *,
        outputs: list[str],
        owner: str,
        coverage: Coverage | None = None,
        warnings: list[TranscriptWarning] | None = None,
        model: str | None = None,
    ) -> Job:
        self._require(
            (not self.state.is_final or self.accepts_late_result) and self._owned_by(owner), "finish"
        )
        return self._next(
            now,
            state=JobState.DONE,
            outputs=outputs,
            coverage=coverage,
            warnings=list(warnings or []),
            # What really ran, as the result says (the local emulators name their engine).
            model=model or self.model,
            error=None,
            finished_at=now,
            claimed_until=None,
            claimed_by=None,
            next_check_at=None,
        )

    def fail(self, now: datetime, error: JobError) -> Job:
        self._require(not self.state.is_final, "fail")
        attempt = self.current_attempt
        attempts = self.attempts
        if attempt is not None and attempt.state is AttemptState.IN_FLIGHT:
            attempts = self._with_attempt(
                attempt.number, state=AttemptState.REFUSED, error=error, ended_at=now
            )
        return self._next(
            now,
            state=JobState.FAILED,
            attempts=attempts,
            error=error,
            finished_at=now,
            claimed_until=None,
            claimed_by=None,
            next_check_at=None,
        )

    def supersede(self, now: datetime, *, by: str) -> Job:
        """A later upload of the key (job ``by``) replaced this one before its outputs or its error
        report were written: it ends here, writing nothing (a late result included)."""
        self._require(not self.state.is_final or self.accepts_late_result, "be superseded")
        return self._next(
            now,
            state=JobState.SUPERSEDED,
            superseded_by=by,
            finished_at=now,
            claimed_until=None,
            claimed_by=None,
            next_check_at=None,
        )

    def announce(self, event: JobEvent) -> Job:
        """The job, just ended and not yet written, with ``event`` to deliver: part of the final
        state's own write (no version of its own), so the event cannot be lost in between."""
        self._require(self.state in (JobState.DONE, JobState.FAILED), "announce its end")
        return self.model_copy(update={"events": kept_events([*self.events, event])})

    def with_deliveries(self, now: datetime, events: list[JobEvent]) -> Job:
        """The job's events with deliveries claimed or tried: in any state (it is not a change of
        the job's own state, and a re-driven job's earlier event is still owed to its receivers)."""
        return self._next(now, events=kept_events(events))

    def check_later(self, now: datetime, *, at: datetime) -> Job:
        """Nothing new: the reconciler looks again at ``at``."""
        self._require(not self.state.is_final, "be checked later")
        return self._next(now, next_check_at=at, checks=self.checks + 1)

    def redrive(self, now: datetime, *, reason: str) -> Job:
        """A deliberate re-run of a finished job: the next attempt is linked to the earlier ones."""
        self._require(self.state.is_final and not self.leased(now), "be re-driven")
        return self._next(
            now,
            state=JobState.ACCEPTED,
            error=None,
            finished_at=None,
            next_check_at=now,
            checks=0,
            claimed_until=None,
            claimed_by=None,
            redrives=self.redrives + 1,
            active_since=now,
            next_attempt_reason=f"re-driven: {reason}",
        )


def provider_jobs_exhausted(job: Job, limit: int) -> JobError | None:
    """Why ``job`` must not start another attempt: its upload already made ``limit`` provider jobs
    (each one paid for) since it began trying; ``None`` while it may."""
    if job.provider_jobs < limit:
        return None
    unresolved = [
        f"attempt {a.number} ({a.error.code if a.error else a.state.value.lower()})"
        for a in job.attempts
        if a.state.unresolved and a.started_at >= job.active_since
    ]
    which = f"; no answer was recorded for {', '.join(unresolved)}" if unresolved else ""
    return JobError(
        code=PROVIDER_JOBS_EXHAUSTED,
        message=f"{job.provider_jobs} {job.provider} jobs were already started for this upload{which}. "
        "Not submitted again, to pay no more: a late result of one of them still finishes it, and "
        f"`bucketscribe redrive {job.id}` pays for another",
        retryable=True,
    )

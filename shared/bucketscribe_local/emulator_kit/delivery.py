"""Callbacks (SIS) and pushes (DashScope): the fault dice, the delay, the POST and its retries.

``Deliverer.send`` schedules one delivery on the clock; worker threads only ever do the HTTP POST,
so delayed and backed-off deliveries wait as timers, not as blocked threads. What each emulator
counts it learns through ``on_event``; what it sends (the real body, or a forged one naming another
job) is its own business.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from enum import StrEnum

from bucketscribe.domain.redaction import redact
from bucketscribe_local.emulator_kit.clock import Clock, Timers
from bucketscribe_local.faults import FaultDice

logger = logging.getLogger(__name__)


class DeliveryEvent(StrEnum):
    ATTEMPT = "attempt"  # a POST is about to go out
    SENT = "sent"  # the receiver accepted it
    FAILED = "failed"  # every attempt was refused or failed


@dataclass(frozen=True)
class DeliveryPolicy:
    attempts: int
    backoff_s: float  # before retry n (1-based): backoff_s * 2 ** (n - 1)
    timeout_s: float
    accepted: Callable[[int], bool]  # which HTTP statuses count as delivered


@dataclass(frozen=True)
class DeliveryFaults:
    """What the dice decided for one finished job's notification."""

    dropped: bool
    copies: int
    forged: bool

    @classmethod
    def roll(cls, dice: FaultDice) -> DeliveryFaults:
        plan = dice.plan
        forged = dice.roll(plan.callback_for_unknown_job)
        if dice.roll(plan.drop_callback_rate):
            return cls(dropped=True, copies=0, forged=forged)
        return cls(dropped=False, copies=2 if dice.roll(plan.duplicate_callback_rate) else 1, forged=forged)


@dataclass
class _Delivery:
    url: str
    body: bytes
    headers: Callable[[], Mapping[str, str]]
    on_event: Callable[[DeliveryEvent], None]
    attempt: int = 0


def _ignore(_: DeliveryEvent) -> None:
    return None


class Deliverer:
    """POSTs bodies to receivers with retries on the clock; ``wait_idle`` until all have ended."""

    def __init__(self, clock: Clock, policy: DeliveryPolicy, *, workers: int, name: str) -> None:
        if policy.attempts < 1:
            raise ValueError("a delivery needs at least one attempt")
        self.clock = clock
        self.policy = policy
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._idle = threading.Condition()
        self._in_flight = 0
        self._timers = Timers(clock)
        self._closed = False

    def send(
        self,
        url: str,
        body: bytes,
        *,
        not_before: float,
        headers: Callable[[], Mapping[str, str]],
        on_event: Callable[[DeliveryEvent], None],
    ) -> None:
        """Deliver ``body`` to ``url`` from ``not_before`` (clock time) on; headers are made per attempt."""
        with self._idle:
            if self._closed:
                return
            self._in_flight += 1
        self._schedule(_Delivery(url, body, headers, on_event), not_before)

    def notify(
        self,
        url: str,
        *,
        dice: FaultDice,
        finished_at: float,
        body: bytes,
        forged_body: Callable[[], bytes],
        headers: Callable[[], Mapping[str, str]],
        on_event: Callable[[DeliveryEvent], None],
    ) -> DeliveryFaults:
        """Announce a finished job under the plan's delivery faults; returns what the dice decided.

        A forged twin (``callback_for_unknown_job``) goes out whatever happens to the real one and
        reports no events; a dropped notification sends nothing; a duplicate sends the same body
        twice. Everything waits ``callback_delay_s`` after ``finished_at``.
        """
        faults = DeliveryFaults.roll(dice)
        not_before = finished_at + dice.plan.callback_delay_s
        if faults.forged:
            self.send(url, forged_body(), not_before=not_before, headers=headers, on_event=_ignore)
        for _ in range(faults.copies):
            self.send(url, body, not_before=not_before, headers=headers, on_event=on_event)
        return faults

    def in_flight(self) -> int:
        with self._idle:
            return self._in_flight

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout=timeout)

    def close(self) -> None:
        with self._idle:
            self._closed = True
        self._timers.cancel_all()
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _schedule(self, delivery: _Delivery, at: float) -> None:
        self._timers.call_at(at, lambda: self._start(delivery))

    def _start(self, delivery: _Delivery) -> None:
        try:
            self._pool.submit(self._attempt, delivery)
        except RuntimeError:  # the pool is shut down: the emulator is stopping
            self._done()

    def _attempt(self, delivery: _Delivery) -> None:
        if self._closed:
            self._done()
            return
        started = self.clock.now()  # backoff counts from here, so a test may advance at any time
        delivery.on_event(DeliveryEvent.ATTEMPT)
        if self._post(delivery):
            delivery.on_event(DeliveryEvent.SENT)
            self._done()
            return
        delivery.attempt += 1
        if delivery.attempt < self.policy.attempts:
            self._schedule(delivery, started + self.policy.backoff_s * 2 ** (delivery.attempt - 1))
            return
        logger.warning("gave up delivering to %s after %d attempts", redact(delivery.url), delivery.attempt)
        delivery.on_event(DeliveryEvent.FAILED)
        self._done()

    def _post(self, delivery: _Delivery) -> bool:
        request = urllib.request.Request(  # noqa: S310 (the emulators accept only http(s) receivers)
            delivery.url, data=delivery.body, method="POST", headers=dict(delivery.headers())
        )
        try:
            with urllib.request.urlopen(request, timeout=self.policy.timeout_s) as response:  # noqa: S310
                return self.policy.accepted(response.status)
        except urllib.error.HTTPError as refused:
            refused.close()
            logger.info("delivery to %s answered %s", redact(delivery.url), refused.code)
            return False
        except (urllib.error.URLError, OSError) as error:
            logger.info("delivery to %s failed: %s", redact(delivery.url), redact(str(error)))
            return False

    def _done(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

"""The time the emulators live on: real by default, or a manual clock that only tests move.

Everything an emulator does "later" — a job that sits queued for ``processing_delay_s``, a callback
held back by ``callback_delay_s``, a retry backoff, a result that expires, a held answer, the query
rate window — is measured on one ``Clock``. A ``ManualClock`` makes all of that deterministic: a
test advances it (``clock.advance(3600)``, or ``POST /_emulator/clock {"advance_s": 3600}`` from
another process) instead of sleeping, and waits for ``clock.waiting()`` to see that the emulator
really is parked on the clock before it moves it.

Deadlines are always absolute (``start + delay`` with ``start`` recorded when the event happened),
so advancing the clock before a worker got round to waiting can never strand that worker.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(order=True)
class _Timer:
    deadline: float
    sequence: int
    action: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class TimerHandle:
    """What ``Clock.call_at`` returns: ``cancel()`` stops the action from running."""

    def __init__(self, timer: _Timer, clock: Clock) -> None:
        self._timer = timer
        self._clock = clock

    def cancel(self) -> None:
        self._clock._cancel(self._timer)


class Clock(ABC):
    """Seconds since the epoch, sleeps that a stop can cut short, and timers (one thread per clock)."""

    # How long an async hold sleeps between looks at the clock and the stop flag.
    ASYNC_POLL_S = 0.05

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._timers: list[_Timer] = []
        self._sequence = itertools.count()
        self._timer_thread: threading.Thread | None = None
        self._waiting = 0

    @abstractmethod
    def now(self) -> float:
        """Seconds since the epoch, on this clock."""

    @property
    @abstractmethod
    def manual(self) -> bool:
        """True when only ``advance`` moves this clock."""

    @abstractmethod
    def real_wait_s(self, deadline: float) -> float | None:
        """How long (real seconds) to block before looking again; None: until notified."""

    def datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), UTC)

    def notify(self) -> None:
        """Wake every waiter so it looks at the clock (and its stop flag) again."""
        with self._changed:
            self._changed.notify_all()

    def waiting(self) -> int:
        """Pending timers and async holds currently parked on this clock."""
        with self._changed:
            return self._waiting + sum(1 for t in self._timers if not t.cancelled)

    def wait_for_waiting(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` things wait on this clock (tests: "it is parked now")."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._waiting + sum(1 for t in self._timers if not t.cancelled) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(remaining)
            return True

    async def hold_until(self, deadline: float, stop: threading.Event) -> bool:
        """Wait (in a coroutine) until ``deadline``; False when ``stop`` was set first.

        Never blocks the event loop's other requests: the clock is looked at every few
        milliseconds, so a manual clock's ``advance`` and a stop are both seen promptly.
        """
        with self._changed:
            self._waiting += 1
            self._changed.notify_all()
        try:
            while not stop.is_set():
                if self.now() >= deadline:
                    return True
                real = self.real_wait_s(deadline)
                await asyncio.sleep(self.ASYNC_POLL_S if real is None else min(real, self.ASYNC_POLL_S))
            return False
        finally:
            with self._changed:
                self._waiting -= 1
                self._changed.notify_all()

    def call_at(self, deadline: float, action: Callable[[], None]) -> TimerHandle:
        """Run ``action`` (briefly: it runs on the clock's timer thread) once ``deadline`` is reached."""
        timer = _Timer(deadline, next(self._sequence), action)
        with self._changed:
            heapq.heappush(self._timers, timer)
            if self._timer_thread is None:
                self._timer_thread = threading.Thread(target=self._run_timers, name="clock", daemon=True)
                self._timer_thread.start()
            self._changed.notify_all()
        return TimerHandle(timer, self)

    def _cancel(self, timer: _Timer) -> None:
        with self._changed:
            timer.cancelled = True
            self._changed.notify_all()

    def _run_timers(self) -> None:
        while True:
            with self._changed:
                while self._timers and self._timers[0].cancelled:
                    heapq.heappop(self._timers)
                if not self._timers:  # nothing left: the next call_at starts a new thread
                    self._timer_thread = None
                    return
                first = self._timers[0]
                if self.now() < first.deadline:
                    self._changed.wait(self.real_wait_s(first.deadline))
                    continue
                heapq.heappop(self._timers)
                self._changed.notify_all()
            first.action()


class Timers:
    """The timers one owner has on a clock, so that closing the owner cancels what is still pending."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._pending: set[TimerHandle] = set()
        self._closed = False

    def call_at(self, deadline: float, action: Callable[[], None]) -> None:
        """Run ``action`` at ``deadline`` (at once, on this thread, if it has passed)."""
        if deadline <= self.clock.now():
            action()
            return
        holder: list[TimerHandle] = []

        def due() -> None:
            with self._lock:
                self._pending.difference_update(holder)
            action()

        with self._lock:  # held while scheduling, so due() cannot run before the handle is recorded
            if self._closed:
                return
            handle = self.clock.call_at(deadline, due)
            holder.append(handle)
            self._pending.add(handle)

    def cancel_all(self) -> None:
        with self._lock:
            self._closed = True
            pending = list(self._pending)
            self._pending.clear()
        for handle in pending:
            handle.cancel()


class RealClock(Clock):
    """Wall-clock time: what the emulators use unless a test hands them a ``ManualClock``."""

    @property
    def manual(self) -> bool:
        return False

    def now(self) -> float:
        return time.time()

    def real_wait_s(self, deadline: float) -> float | None:
        return max(deadline - time.time(), 0.0)


class ManualClock(Clock):
    """Stands still until ``advance``; starts at the (whole) second of its creation unless told otherwise."""

    def __init__(self, start: float | None = None) -> None:
        super().__init__()
        # A whole second: times a test computes from it (start + 600) stay exact floats.
        self._now = float(int(time.time())) if start is None else start

    @property
    def manual(self) -> bool:
        return True

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        """Move time forward (never back) and wake everything waiting; returns the new time."""
        if seconds < 0:
            raise ValueError("a clock only moves forward")
        with self._changed:
            self._now += seconds
            self._changed.notify_all()
            return self._now

    def real_wait_s(self, deadline: float) -> float | None:
        return None

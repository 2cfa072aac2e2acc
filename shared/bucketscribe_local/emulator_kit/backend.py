"""What every emulated service's state has in common, whatever its API looks like.

A clock, the fault plan and its seeded dice, counters that tests can wait on, timers that are
cancelled when the emulator stops, and the stop flag that held answers and sleepers watch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from pydantic import BaseModel

from bucketscribe_local.emulator_kit.clock import Clock, RealClock, Timers
from bucketscribe_local.faults import FaultDice, FaultPlan

C = TypeVar("C", bound=BaseModel)
T = TypeVar("T")


class EmulatorBackend(Generic[C]):
    """Base of ``SisBackend`` and ``DashScopeBackend``: ``_lock`` guards all state, ``_changed`` is
    notified on every change a test may wait for."""

    def __init__(self, *, counters: C, faults: FaultPlan | None, clock: Clock | None) -> None:
        self._clock = clock or RealClock()
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._counters = counters
        self._dice = FaultDice(faults or FaultPlan())
        self._stopping = threading.Event()
        self._timers = Timers(self._clock)

    @property
    def clock(self) -> Clock:
        return self._clock

    @property
    def stopping(self) -> threading.Event:
        return self._stopping

    @property
    def faults(self) -> FaultPlan:
        return self._dice.plan

    def set_faults(self, plan: FaultPlan) -> None:
        """Swap the fault plan at run time (with a new seeded dice); running jobs roll the new one."""
        with self._lock:
            self._dice = FaultDice(plan)

    def roll(self, rate: float) -> bool:
        with self._lock:
            return self._dice.roll(rate)

    def choose(self, options: Sequence[T]) -> T:
        """One of ``options``, picked by the fault plan's seeded dice."""
        with self._lock:
            return self._dice.choose(options)

    def count(self, name: str, amount: int = 1) -> None:
        with self._lock:
            setattr(self._counters, name, getattr(self._counters, name) + amount)
            self._changed.notify_all()

    def counter_values(self) -> dict[str, int]:
        with self._lock:
            return self._counters.model_dump()

    def wait_for_counters(self, condition: Callable[[C], bool], timeout: float) -> bool:
        """Block until ``condition(counters)`` holds (tests: wait on what happened, not on time)."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self._counters), timeout=timeout)

    def close(self) -> None:
        """Stop: wake whatever waits on the clock and drop the timers still pending."""
        self._stopping.set()
        self._clock.notify()
        self._timers.cancel_all()

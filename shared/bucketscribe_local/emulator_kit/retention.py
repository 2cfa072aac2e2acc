"""How long a finished job's result stays available, and the sweep that expires older ones.

The services keep results for a fixed time after a job ends (SIS 72 h, DashScope 24 h) and then
answer as if the job never existed. The emulators keep expired jobs in their listing (state
``expired``) but drop their results, so a long local run does not grow without bound.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from bucketscribe_local.faults import FaultPlan


class Expirable(Protocol):
    expired: bool


R = TypeVar("R", bound=Expirable)


@dataclass(frozen=True)
class Retention:
    default_s: float  # the service's own retention; the fault plan's result_expiry_s overrides it

    def keep_s(self, plan: FaultPlan) -> float:
        return self.default_s if plan.result_expiry_s is None else plan.result_expiry_s

    def sweep(
        self,
        records: Iterable[R],
        *,
        now: float,
        plan: FaultPlan,
        finished_at: Callable[[R], float | None],
        drop_result: Callable[[R], None],
    ) -> int:
        """Expire every record finished at least ``keep_s`` ago; returns how many expired now."""
        keep_s = self.keep_s(plan)
        expired = 0
        for record in records:
            ended = finished_at(record)
            if not record.expired and ended is not None and now - ended >= keep_s:
                record.expired = True
                drop_result(record)
                expired += 1
        return expired

"""Fault knobs shared by the local SIS and DashScope emulators.

Tests and benchmarks turn these on to prove the pipeline survives what real
services do: lost or repeated callbacks, slow answers, throttling, failed jobs,
answers lost after the job was created, callbacks that name somebody else's job,
results that expire before anyone fetched them. Both emulators accept the same
plan (``PUT /_emulator/faults``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")

LostResponseMode = Literal["error", "hold", "mixed"]


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drop_callback_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate_callback_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    callback_delay_s: float = Field(default=0.0, ge=0.0)
    # With this probability a callback (SIS) or push (DashScope) comes with a forged twin that names
    # a task id of another job: another existing job's result, another API key's task, or an id never
    # submitted at all.
    callback_for_unknown_job: float = Field(default=0.0, ge=0.0, le=1.0)
    submit_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    submit_error_status: int = 429
    # The job IS created, then the answer is lost: a 5xx ("error"), or held for lost_response_hold_s
    # and then a gateway timeout ("hold": past any sane client timeout), or either ("mixed").
    lost_response_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    lost_response_mode: LostResponseMode = "error"
    lost_response_hold_s: float = Field(default=35.0, ge=0.0)
    job_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    processing_delay_s: float = Field(default=0.0, ge=0.0)
    # DashScope's result files (a task's ``transcription_url``) answer this long after they are
    # asked for, as a slow object store would: the time a push handler spends downloading results.
    result_delay_s: float = Field(default=0.0, ge=0.0)
    # Every answer of the service's API (submit, query, listing) comes this long after it is asked,
    # as from a service across a network: a benchmark's model of the cloud's round trips.
    answer_delay_s: float = Field(default=0.0, ge=0.0)
    # How long a finished job's result stays available; None keeps the emulator's retention (the
    # service's own: SIS 72 h, DashScope 24 h).
    result_expiry_s: float | None = Field(default=None, ge=0.0)
    instant: bool = False
    seed: int | None = None


class FaultDice:
    """Rolls the plan's probabilities with one seeded generator (reproducible runs)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

    def choose(self, options: Sequence[T]) -> T:
        return self._random.choice(options)

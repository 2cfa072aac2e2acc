"""Fault knobs shared by the local SIS and DashScope emulators.

Tests and benchmarks turn these on to prove the pipeline survives what real
services do: lost or repeated callbacks, slow answers, throttling, failed jobs.
"""

from __future__ import annotations

import random

from pydantic import BaseModel, ConfigDict, Field


class FaultPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    drop_callback_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    duplicate_callback_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    callback_delay_s: float = Field(default=0.0, ge=0.0)
    submit_error_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    submit_error_status: int = 429
    job_failure_rate: float = Field(default=0.0, ge=0.0, le=1.0)
    processing_delay_s: float = Field(default=0.0, ge=0.0)
    instant: bool = False
    seed: int | None = None


class FaultDice:
    """Rolls the plan's probabilities with one seeded generator (reproducible runs)."""

    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan
        self._random = random.Random(plan.seed)

    def roll(self, rate: float) -> bool:
        return rate > 0 and self._random.random() < rate

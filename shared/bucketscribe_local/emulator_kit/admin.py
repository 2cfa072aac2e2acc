"""The routes both emulators serve beside the real API (not signed: they exist only here).

- ``GET|PUT /_emulator/faults``: the ``FaultPlan`` in force / a new one (``{}`` turns faults off)
- ``GET /_emulator/counters``: what the emulator has seen and done
- ``GET /_emulator/jobs``: one row per file of every provider job (``EmulatedJobs``)
- ``GET /_emulator/clock``, ``POST /_emulator/clock {"advance_s": N}``: read or move a manual clock
"""

from __future__ import annotations

from typing import Protocol

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bucketscribe_local.emulator_kit.clock import Clock, ManualClock
from bucketscribe_local.emulator_kit.jobs import EmulatedJob, EmulatedJobs, iso_utc
from bucketscribe_local.faults import FaultPlan


class EmulatorAdmin(Protocol):
    @property
    def clock(self) -> Clock: ...

    @property
    def faults(self) -> FaultPlan: ...

    def set_faults(self, plan: FaultPlan) -> None: ...

    def counter_values(self) -> dict[str, int]: ...

    def emulated_jobs(self) -> list[EmulatedJob]: ...


class ClockAdvance(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance_s: float = Field(ge=0)


ADMIN_KEY = web.AppKey("emulator_admin", EmulatorAdmin)


def _refused(status: int, message: str) -> web.Response:
    return web.json_response({"code": "InvalidParameter", "message": message}, status=status)


def _clock_state(clock: Clock) -> dict[str, object]:
    return {"now": iso_utc(clock.now()), "epoch_s": clock.now(), "manual": clock.manual}


async def show_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[ADMIN_KEY].faults.model_dump())


async def replace_faults(request: web.Request) -> web.Response:
    try:
        plan = FaultPlan.model_validate_json(await request.read())
    except ValidationError as error:
        return _refused(400, f"invalid fault plan: {error.errors(include_url=False)}")
    request.app[ADMIN_KEY].set_faults(plan)
    return web.json_response(plan.model_dump())


async def show_counters(request: web.Request) -> web.Response:
    return web.json_response(request.app[ADMIN_KEY].counter_values())


async def list_jobs(request: web.Request) -> web.Response:
    listing = EmulatedJobs(jobs=request.app[ADMIN_KEY].emulated_jobs())
    return web.json_response(listing.model_dump(mode="json"))


async def show_clock(request: web.Request) -> web.Response:
    return web.json_response(_clock_state(request.app[ADMIN_KEY].clock))


async def advance_clock(request: web.Request) -> web.Response:
    clock = request.app[ADMIN_KEY].clock
    if not isinstance(clock, ManualClock):
        return _refused(409, "this emulator runs on real time; start it with a ManualClock to drive it")
    try:
        step = ClockAdvance.model_validate_json(await request.read())
    except ValidationError as error:
        return _refused(400, f"invalid clock step: {error.errors(include_url=False)}")
    clock.advance(step.advance_s)
    return web.json_response(_clock_state(clock))


def add_admin_routes(app: web.Application, admin: EmulatorAdmin) -> None:
    app[ADMIN_KEY] = admin
    app.router.add_get("/_emulator/faults", show_faults)
    app.router.add_put("/_emulator/faults", replace_faults)
    app.router.add_get("/_emulator/counters", show_counters)
    app.router.add_get("/_emulator/jobs", list_jobs)
    app.router.add_get("/_emulator/clock", show_clock)
    app.router.add_post("/_emulator/clock", advance_clock)

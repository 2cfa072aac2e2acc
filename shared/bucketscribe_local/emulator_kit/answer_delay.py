"""The ``answer_delay_s`` fault: the service's API answers that much later, as a service across a
network does (a benchmark's model of the cloud's round trips: ``bench/hot_path.py``).

Held on the emulator's clock, never blocking other requests; only the API's own paths are held
(not the emulator's ``/_emulator`` routes, nor DashScope's result files, which ``result_delay_s``
holds, nor its streaming sockets).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from bucketscribe_local.emulator_kit.backend import EmulatorBackend

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def hold_answer(backend: EmulatorBackend[Any], delay_s: float) -> None:
    """Hold an answer ``delay_s`` on the emulator's clock (nothing when 0); a 503 if the emulator
    stops meanwhile."""
    clock = backend.clock
    if delay_s and not await clock.hold_until(clock.now() + delay_s, backend.stopping):
        raise web.HTTPServiceUnavailable()


def answer_delay(backend: EmulatorBackend[Any], api_prefix: str) -> Middleware:
    """A middleware holding each answer to a path under ``api_prefix`` for the plan's delay."""

    @web.middleware
    async def held(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(api_prefix):
            await hold_answer(backend, backend.faults.answer_delay_s)
        return await handler(request)

    return held

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


def answer_delay(backend: EmulatorBackend[Any], api_prefix: str) -> Middleware:
    """A middleware holding each answer to a path under ``api_prefix`` for the plan's delay."""

    @web.middleware
    async def held(request: web.Request, handler: Handler) -> web.StreamResponse:
        delay = backend.faults.answer_delay_s
        if delay and request.path.startswith(api_prefix):
            clock = backend.clock
            if not await clock.hold_until(clock.now() + delay, backend.stopping):
                raise web.HTTPServiceUnavailable()  # the emulator is stopping
        return await handler(request)

    return held

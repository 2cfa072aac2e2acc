"""An emulator as its users hold it: its backend served on 127.0.0.1, started and stopped, or used
as a context manager (``with SisEmulator(...) as sis:``)."""

from __future__ import annotations

from typing import Any, Generic, Self, TypeVar

from aiohttp import web

from bucketscribe_local.emulator_kit.backend import EmulatorBackend
from bucketscribe_local.emulator_kit.clock import Clock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.http_thread import BackgroundHttpServer

B = TypeVar("B", bound=EmulatorBackend[Any])


class EmulatorServer(Generic[B]):
    def __init__(self, backend: B, app: web.Application, *, host: str, port: int) -> None:
        self.backend = backend
        self._server = BackgroundHttpServer(app, host=host, port=port)
        self._started = False

    @property
    def url(self) -> str:
        """The HTTP origin, e.g. ``http://127.0.0.1:41234``."""
        if not self._server.port:
            raise RuntimeError(
                f"{type(self).__name__} is not started; call start() or use it in a with block"
            )
        return self._server.url

    @property
    def clock(self) -> Clock:
        """The time the emulator lives on; a ``ManualClock`` here lets a test ``advance`` it."""
        return self.backend.clock

    def set_faults(self, plan: FaultPlan) -> None:
        self.backend.set_faults(plan)

    def start(self) -> Self:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        self.backend.close()  # first: held answers and sockets see the stop, so the server can stop
        if self._started:
            self._started = False
            self._server.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

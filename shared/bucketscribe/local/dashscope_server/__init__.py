"""A local, wire-compatible Alibaba DashScope server for the real ``dashscope`` SDK.

Paraformer file transcription (async REST tasks, result files, EventBridge-style push) and
the WebSocket inference endpoint (gummy real-time transcription + translation, realtime
Paraformer). State lives in ``models``, the wire in ``responses``::

    with DashScopeEmulator(api_keys=["sk-test"], engine=my_engine) as emulator:
        dashscope.base_http_api_url = emulator.http_api_url
        dashscope.base_websocket_api_url = emulator.ws_url
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from bucketscribe.local.dashscope_server.models import (
    BackendCounters,
    DashScopeBackend,
    DashScopeError,
    TaskCounters,
    TaskStatus,
)
from bucketscribe.local.dashscope_server.responses import build_app
from bucketscribe.local.emulator_kit.clock import Clock
from bucketscribe.local.faults import FaultPlan
from bucketscribe.local.http_thread import BackgroundHttpServer
from bucketscribe.local.speech import SpeechEngine

__all__ = [
    "BackendCounters",
    "DashScopeBackend",
    "DashScopeEmulator",
    "DashScopeError",
    "TaskCounters",
    "TaskStatus",
    "build_app",
]


class DashScopeEmulator:
    """Runs ``DashScopeBackend`` behind the DashScope wire on 127.0.0.1 (a free port).

    ``start()`` (or ``with``) starts it; ``url`` is the HTTP origin, ``http_api_url`` the value for
    ``dashscope.base_http_api_url`` and ``ws_url`` the one for ``dashscope.base_websocket_api_url``.
    Extra keyword arguments go to ``DashScopeBackend`` (e.g. ``interim_interval_s``,
    ``connection_idle_s``, ``push_retries``, ``download_timeout_s``, ``region``, ``account_id``,
    ``key_accounts``).
    """

    def __init__(
        self,
        *,
        api_keys: Iterable[str] = ("sk-local",),
        engine: SpeechEngine | None = None,
        faults: FaultPlan | None = None,
        workers: int = 4,
        max_files_per_task: int = 100,
        retention_s: float = 24 * 3600.0,
        query_rps: int | None = 20,
        push_target_url: str | None = None,
        push_headers: Mapping[str, str] | None = None,
        idle_timeout_s: float = 23.0,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **backend_options: Any,
    ) -> None:
        self.backend = DashScopeBackend(
            api_keys=api_keys,
            engine=engine,
            faults=faults,
            workers=workers,
            max_files_per_task=max_files_per_task,
            retention_s=retention_s,
            query_rps=query_rps,
            push_target_url=push_target_url,
            push_headers=push_headers,
            idle_timeout_s=idle_timeout_s,
            clock=clock,
            **backend_options,
        )
        self._server = BackgroundHttpServer(build_app(self.backend), host=host, port=port)
        self._host = host
        self._started = False

    @property
    def clock(self) -> Clock:
        """The time the emulator lives on; a ``ManualClock`` here lets a test ``advance`` it."""
        return self.backend.clock

    def start(self) -> DashScopeEmulator:
        self._server.start()
        self._started = True
        self.backend.public_base_url = self.url
        return self

    def stop(self) -> None:
        if self._started:
            self._started = False
            self.backend.close()
            self._server.stop()

    def __enter__(self) -> DashScopeEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """HTTP origin, e.g. ``http://127.0.0.1:41234``."""
        if not self._server.port:
            raise RuntimeError("DashScopeEmulator is not started; call start() or use it in a with block")
        return self._server.url

    @property
    def http_api_url(self) -> str:
        """The value for ``dashscope.base_http_api_url``."""
        return self.url + "/api/v1"

    @property
    def ws_url(self) -> str:
        """The value for ``dashscope.base_websocket_api_url``."""
        return "ws" + self.url.removeprefix("http") + "/api-ws/v1/inference"

    def set_faults(self, plan: FaultPlan) -> None:
        self.backend.set_faults(plan)

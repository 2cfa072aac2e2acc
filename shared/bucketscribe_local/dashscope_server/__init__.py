"""A local, wire-compatible Alibaba DashScope server for the real ``dashscope`` SDK.

Paraformer file transcription (async REST tasks, result files, EventBridge-style push) and
the WebSocket inference endpoint (gummy real-time transcription + translation, realtime
Paraformer). What callers send is in ``requests``, the answers that refuse it in ``errors``, the
file-transcription state in ``tasks``, the real-time streams in ``streams``, and the wire in
``responses`` (HTTP) and ``inference_socket`` (WebSocket)::

    with DashScopeEmulator(api_keys=["sk-test"], engine=my_engine) as emulator:
        dashscope.base_http_api_url = emulator.http_api_url
        dashscope.base_websocket_api_url = emulator.ws_url
        ...
"""

from __future__ import annotations

from typing import Any, Self

from bucketscribe_local.dashscope_server.errors import DashScopeError
from bucketscribe_local.dashscope_server.responses import build_app
from bucketscribe_local.dashscope_server.tasks import BackendCounters, DashScopeBackend, TaskCounters
from bucketscribe_local.dashscope_server.wire_formats import TaskStatus
from bucketscribe_local.emulator_kit.server import EmulatorServer

__all__ = [
    "BackendCounters",
    "DashScopeBackend",
    "DashScopeEmulator",
    "DashScopeError",
    "TaskCounters",
    "TaskStatus",
    "build_app",
]


class DashScopeEmulator(EmulatorServer[DashScopeBackend]):
    """Runs ``DashScopeBackend`` behind the DashScope wire on 127.0.0.1 (a free port).

    ``start()`` (or ``with``) starts it; ``url`` is the HTTP origin, ``http_api_url`` the value for
    ``dashscope.base_http_api_url`` and ``ws_url`` the one for ``dashscope.base_websocket_api_url``.
    Every keyword but ``host`` and ``port`` goes to ``DashScopeBackend`` (``api_keys``, ``engine``,
    ``faults``, ``clock``, ``workers``, ``retention_s``, ``push_target_url``, ``key_accounts``, …).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, **backend_options: Any) -> None:
        backend = DashScopeBackend(**backend_options)
        super().__init__(backend, build_app(backend), host=host, port=port)

    def start(self) -> Self:
        super().start()
        self.backend.public_base_url = self.url  # where transcription_url links point
        return self

    @property
    def http_api_url(self) -> str:
        """The value for ``dashscope.base_http_api_url``."""
        return self.url + "/api/v1"

    @property
    def ws_url(self) -> str:
        """The value for ``dashscope.base_websocket_api_url``."""
        return "ws" + self.url.removeprefix("http") + "/api-ws/v1/inference"

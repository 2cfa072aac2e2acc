"""A Huawei SIS-compatible server for recording-file recognition (LASR), run on 127.0.0.1.

The real ``huaweicloudsdksis`` SDK talks to it unchanged: point the client's endpoint at
``SisEmulator.url`` and sign with the emulator's AK/SK. State lives in ``models`` (``SisBackend``),
the wire in ``responses`` (``create_sis_app``), moto-style.
"""

from __future__ import annotations

from typing import Any

from bucketscribe.local.emulator_kit.clock import Clock
from bucketscribe.local.faults import FaultPlan
from bucketscribe.local.http_thread import BackgroundHttpServer
from bucketscribe.local.sis_server.models import (
    DEFAULT_RETENTION_S,
    Acceptance,
    JobStats,
    JobStatus,
    SisBackend,
    SisCounters,
    SisError,
    TranscriberSubmission,
    parse_submission,
)
from bucketscribe.local.sis_server.responses import create_sis_app
from bucketscribe.local.speech import SpeechEngine

__all__ = [
    "DEFAULT_RETENTION_S",
    "Acceptance",
    "JobStats",
    "JobStatus",
    "SisBackend",
    "SisCounters",
    "SisEmulator",
    "SisError",
    "TranscriberSubmission",
    "create_sis_app",
    "parse_submission",
]


class SisEmulator:
    """``SisBackend`` + ``create_sis_app`` served by a ``BackgroundHttpServer``.

    >>> with SisEmulator(engine=FixedSpeechEngine()) as sis:   # doctest: +SKIP
    ...     client = SisClient.new_builder().with_credentials(
    ...         BasicCredentials(sis.ak, sis.sk, sis.project_id)).with_endpoint(sis.url).build()
    """

    def __init__(
        self,
        *,
        engine: SpeechEngine,
        ak: str = "local-sis-ak",
        sk: str = "local-sis-sk",
        project_id: str = "local-sis-project",
        faults: FaultPlan | None = None,
        workers: int = 2,
        max_concurrent_jobs: int = 100,
        retention_s: float = DEFAULT_RETENTION_S,
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        **backend_options: Any,
    ) -> None:
        self.ak = ak
        self.sk = sk
        self.project_id = project_id
        self.backend = SisBackend(
            ak=ak,
            sk=sk,
            project_id=project_id,
            engine=engine,
            faults=faults,
            workers=workers,
            max_concurrent_jobs=max_concurrent_jobs,
            retention_s=retention_s,
            clock=clock,
            **backend_options,
        )
        self._server = BackgroundHttpServer(create_sis_app(self.backend), host=host, port=port)
        self._started = False

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``: give it to ``ClientBuilder.with_endpoint``."""
        return self._server.url

    @property
    def clock(self) -> Clock:
        """The time the emulator lives on; a ``ManualClock`` here lets a test ``advance`` it."""
        return self.backend.clock

    def start(self) -> SisEmulator:
        self._server.start()
        self._started = True
        return self

    def stop(self) -> None:
        self.backend.close()  # first: held answers see the stop and end, so the server can stop
        if self._started:
            self._server.stop()
            self._started = False

    def set_faults(self, plan: FaultPlan) -> None:
        self.backend.set_faults(plan)

    def __enter__(self) -> SisEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

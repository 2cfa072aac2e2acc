"""A Huawei SIS-compatible server for recording-file recognition (LASR), run on 127.0.0.1.

The real ``huaweicloudsdksis`` SDK talks to it unchanged: point the client's endpoint at
``SisEmulator.url`` and sign with the emulator's AK/SK. State lives in ``models`` (``SisBackend``),
the wire in ``responses`` (``create_sis_app``), moto-style.
"""

from __future__ import annotations

from typing import Any

from bucketscribe_local.emulator_kit.server import EmulatorServer
from bucketscribe_local.sis_server.models import (
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
from bucketscribe_local.sis_server.responses import create_sis_app
from bucketscribe_local.speech import SpeechEngine

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


class SisEmulator(EmulatorServer[SisBackend]):
    """``SisBackend`` + ``create_sis_app`` served on 127.0.0.1.

    >>> with SisEmulator(engine=FixedSpeechEngine()) as sis:   # doctest: +SKIP
    ...     client = SisClient.new_builder().with_credentials(
    ...         BasicCredentials(sis.ak, sis.sk, sis.project_id)).with_endpoint(sis.url).build()

    ``url`` is what ``ClientBuilder.with_endpoint`` takes. Other keywords go to ``SisBackend``
    (``faults``, ``clock``, ``workers``, ``max_concurrent_jobs``, ``retention_s``, …).
    """

    def __init__(
        self,
        *,
        engine: SpeechEngine,
        ak: str = "local-sis-ak",
        sk: str = "local-sis-sk",
        project_id: str = "local-sis-project",
        host: str = "127.0.0.1",
        port: int = 0,
        **backend_options: Any,
    ) -> None:
        self.ak = ak
        self.sk = sk
        self.project_id = project_id
        backend = SisBackend(ak=ak, sk=sk, project_id=project_id, engine=engine, **backend_options)
        super().__init__(backend, create_sis_app(backend), host=host, port=port)

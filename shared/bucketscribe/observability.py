"""The one logger and one metrics publisher every entry point shares (Powertools), and the
counters the use cases' outcomes turn into."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

from bucketscribe.domain.job import StreamMetrics
from bucketscribe.domain.redaction import redact

SERVICE = "bucketscribe"

# An invocation that records no metric is normal here (a status request, a repeated push, any run
# with metrics disabled); Powertools warns about each on stderr, which only buries real messages.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Powertools' JSON lines with every credential taken out of every text field (messages, extra
    keys, exception text and stack traces), before the line is serialised."""

    def serialize(self, log: Any) -> str:
        return super().serialize(_redacted(log))


def _redacted(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    if isinstance(value, BaseException):
        # Powertools puts the exception object itself in a stack trace's "value" and serialises it
        # with str() later: its text is what may carry a URL, so it is written already redacted.
        return redact(str(value))
    return value


logger = Logger(service=SERVICE, logger_formatter=RedactingFormatter())
metrics = Metrics(namespace=SERVICE, service=SERVICE)
# Uploads are worked on side by side; Powertools' metric set is a plain dict, flushed (iterated and
# cleared) by whichever addition makes it reach 100: one at a time.
_adding = threading.Lock()


def count(name: str, value: float = 1) -> None:
    measure(name, value, MetricUnit.Count)


def measure(name: str, value: float, unit: MetricUnit) -> None:
    # Powertools keeps metrics it may not publish (POWERTOOLS_METRICS_DISABLED, as in tests and the
    # local stack) and prints them anyway once 100 pile up: a disabled metric is not even recorded.
    if not is_metrics_disabled():
        with _adding:
            metrics.add_metric(name=name, unit=unit, value=value)


def record_stream(stream: StreamMetrics) -> None:
    """A real-time stream's delays as the service measured them (submit worker or reconciler)."""
    if stream.first_package_ms is not None:
        measure("FirstPackageDelay", stream.first_package_ms, MetricUnit.Milliseconds)
    if stream.last_package_ms is not None:
        measure("LastPackageDelay", stream.last_package_ms, MetricUnit.Milliseconds)

"""A real-time stream's measures (``job.StreamMetrics``) as a person reads them: in the
``stream`` console and its summary table, and in ``status``. A measure the stream did not get
(no result came, the task never ended) reads ``-``."""

from __future__ import annotations


def delay_text(ms: int | None) -> str:
    """A first- or last-package delay: ``410 ms``."""
    return "-" if ms is None else f"{ms} ms"


def factor_text(factor: float | None) -> str:
    """A real-time factor (streaming time over audio time): ``0.25``."""
    return "-" if factor is None else f"{factor:.2f}"

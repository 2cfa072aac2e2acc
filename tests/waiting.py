"""Waiting on a condition in tests that run against real processes (the local stack, a CLI):
look again until it holds, and fail with what was awaited once the deadline has passed."""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.1


def wait_until(
    condition: Callable[[], object], *, timeout_s: float, what: str, every_s: float = POLL_S
) -> None:
    """Return as soon as ``condition()`` is true; fail naming ``what`` once ``timeout_s`` has passed."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout_s:g} s waiting for {what}"
        time.sleep(every_s)

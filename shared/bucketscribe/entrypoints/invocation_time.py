"""An invocation's remaining time, as the use cases take it: a margin is kept back in both forms so
that what was done can still be recorded before the platform stops the function."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from aws_lambda_powertools.utilities.typing import LambdaContext


def out_of_time(context: LambdaContext, margin_ms: int) -> Callable[[], bool]:
    """Whether no more work should start (less than ``margin_ms`` left)."""
    return lambda: context.get_remaining_time_in_millis() < margin_ms


def time_left(context: LambdaContext, margin_ms: int) -> Callable[[], timedelta]:
    """How long work starting now may take and still end ``margin_ms`` before the invocation does."""
    return lambda: timedelta(milliseconds=context.get_remaining_time_in_millis() - margin_ms)

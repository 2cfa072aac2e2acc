"""The one clock the domain reads when no other is given: aware UTC time."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    return datetime.now(UTC)

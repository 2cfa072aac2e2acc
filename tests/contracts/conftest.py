"""What the contract tests share: one moto server and one media server for the whole session.

Each test makes its own bucket, table, queue or secret under a name of its own (``unique_name``)
instead of resetting moto between tests, so the implementations of one port can run side by side
on one server and the whole suite pays for one server start.
"""

from __future__ import annotations

import uuid

import pytest

from tests.integration.conftest import media, moto_endpoint

__all__ = ["media", "moto_endpoint", "unique_name"]


@pytest.fixture
def unique_name() -> str:
    """A name no other test uses (a valid bucket, table and queue name alike)."""
    return f"contract-{uuid.uuid4().hex[:12]}"

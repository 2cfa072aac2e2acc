"""PyAV in the package but not loading (a wheel for another CPU or C library): the media tools say
they cannot convert, once, with the reason, instead of each upload failing on an ImportError."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from bucketscribe.media.bucket import BucketMedia
from bucketscribe.observability import logger as service_logger
from tests.fakes import InMemoryStorage

pytestmark = pytest.mark.unit


def test_media_libraries_that_do_not_load_mean_no_conversion_said_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # ``import av`` now raises ImportError
    written = io.StringIO()
    handler = logging.StreamHandler(written)
    service = logging.getLogger(service_logger.name)
    service.addHandler(handler)
    try:
        tools = BucketMedia(InMemoryStorage(), converts=None)
        assert tools.converts is False and tools.converts is False
    finally:
        service.removeHandler(handler)
    assert written.getvalue().count("PyAV or numpy does not load") == 1


def test_media_libraries_that_load_are_found_at_first_use_not_at_start(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "av", raising=False)
    tools = BucketMedia(InMemoryStorage(), converts=None)
    assert "av" not in sys.modules  # nothing imported until an upload asks
    assert tools.converts is True and "av" in sys.modules

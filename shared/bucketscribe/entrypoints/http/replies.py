"""Small shared pieces of the HTTP routes: JSON answers and the body-size guard."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bucketscribe.entrypoints.http.routing import Reply
from bucketscribe.observability import logger
from bucketscribe.wiring import environment_settings

NOT_FOUND = {"message": "Not found"}
UNAUTHORIZED = {"message": "Unauthorized"}
TRY_LATER = {"message": "Try again later"}


def json_reply(status: int, body: Mapping[str, Any] | str) -> Reply:
    return Reply.json(status, body)


def oversized(raw: str, path: str) -> bool:
    """Bodies over the configured cap are refused before anything reads them."""
    size = len(raw.encode("utf-8", errors="replace"))
    if size > environment_settings().max_callback_body_bytes:
        logger.warning("Callback body too large; refused", extra={"path": path, "bytes": size})
        return True
    return False

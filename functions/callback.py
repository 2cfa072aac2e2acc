"""Deployed function ``callback``: provider callbacks and ``GET /jobs/{id}`` over API Gateway."""

from bucketscribe.entrypoints.callback import handler

__all__ = ["handler"]

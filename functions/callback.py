"""Deployed function ``callback``: provider callbacks and ``GET /jobs/{id}`` over API Gateway."""

from bucketscribe.clouds.aws.callback import handler

__all__ = ["handler"]

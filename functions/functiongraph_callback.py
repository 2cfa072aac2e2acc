"""Deployed FunctionGraph function ``callback``: provider callbacks and ``GET /jobs`` behind API Gateway."""

from bucketscribe.entrypoints.functiongraph.callback import handler

__all__ = ["handler"]

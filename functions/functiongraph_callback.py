"""Deployed FunctionGraph function ``callback``: provider callbacks and ``GET /jobs`` behind API Gateway."""

from bucketscribe.clouds.huawei.functiongraph.callback import handler

__all__ = ["handler"]

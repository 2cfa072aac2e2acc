"""Deployed FunctionGraph function ``reconcile``: on the timer, carry on every unfinished job."""

from bucketscribe.clouds.huawei.functiongraph.reconcile import handler

__all__ = ["handler"]

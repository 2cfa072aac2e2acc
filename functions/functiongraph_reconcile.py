"""Deployed FunctionGraph function ``reconcile``: on the timer, carry on every unfinished job."""

from bucketscribe.entrypoints.functiongraph.reconcile import handler

__all__ = ["handler"]

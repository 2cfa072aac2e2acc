"""Deployed function ``reconcile``: on a schedule, finish jobs whose completion never arrived."""

from bucketscribe.entrypoints.reconcile import handler

__all__ = ["handler"]

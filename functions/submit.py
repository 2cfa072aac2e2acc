"""Deployed function ``submit``: SQS batch of bucket notifications → transcription jobs."""

from bucketscribe.entrypoints.submit import handler

__all__ = ["handler"]

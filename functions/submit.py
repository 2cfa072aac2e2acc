"""Deployed function ``submit``: SQS batch of bucket notifications → transcription jobs."""

from bucketscribe.clouds.aws.submit import handler

__all__ = ["handler"]

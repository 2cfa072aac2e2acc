"""Deployed FunctionGraph function ``submit``: the OBS trigger's upload events → transcription jobs."""

from bucketscribe.clouds.huawei.functiongraph.submit import handler

__all__ = ["handler"]

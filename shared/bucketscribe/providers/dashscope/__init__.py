"""Alibaba DashScope: Paraformer file transcription (tasks of up to 100 files, a task listing,
pushes through EventBridge) and real-time recognition (gummy, Paraformer real-time) over the
WebSocket API — options, settings, adapters on the ``dashscope`` SDK, result and push formats, and
their plugins for the registry."""

from bucketscribe.providers.dashscope.plugin import PLUGINS

__all__ = ["PLUGINS"]

"""Huawei SIS recording-file recognition: options, settings, the adapter on ``huaweicloudsdksis``,
its result format, and its plugin for the registry."""

from bucketscribe.providers.sis.plugin import PLUGINS

__all__ = ["PLUGINS"]

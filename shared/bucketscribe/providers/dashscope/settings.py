"""DashScope's own settings (``BUCKETSCRIBE_DASHSCOPE_*``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from bucketscribe.settings import EnvironmentSettings


class DashScopeSettings(EnvironmentSettings):
    env_prefix = "BUCKETSCRIBE_DASHSCOPE_"

    api_key: SecretStr | None = None
    api_key_secret_name: str | None = None
    # The HTTP base (https://dashscope.aliyuncs.com/api/v1 by default) and the real-time WebSocket
    # endpoint (wss://dashscope.aliyuncs.com/…), for another region's or the local emulator's.
    base_url: str | None = None
    ws_url: str | None = None
    workspace: str | None = None
    max_files_per_task: int = Field(default=100, ge=1, le=100)
    throttle_backoff_s: float = Field(default=0.5, ge=0)

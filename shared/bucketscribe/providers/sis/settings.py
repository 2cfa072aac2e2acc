"""SIS's own settings (``BUCKETSCRIBE_SIS_*``) and how its credentials are found."""

from __future__ import annotations

import os

from bucketscribe.settings import EnvironmentSettings


class SisSettings(EnvironmentSettings):
    env_prefix = "BUCKETSCRIBE_SIS_"

    region: str = "cn-north-4"
    endpoint: str | None = None
    project_id: str | None = None
    # A secret {"ak": ..., "sk": ..., "project_id": ...}; unset: HUAWEICLOUD_SDK_AK / _SK.
    credentials_secret_name: str | None = None

    @property
    def environment_project_id(self) -> str | None:
        return self.project_id or os.environ.get("HUAWEICLOUD_SDK_PROJECT_ID")

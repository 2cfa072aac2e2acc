"""The folder cloud's own settings (``BUCKETSCRIBE_*``)."""

from __future__ import annotations

from pathlib import Path

from bucketscribe.settings import EnvironmentSettings


class FolderSettings(EnvironmentSettings):
    # Where the cloud lives: ``buckets/<bucket>/<key>`` and the job store's ``<jobs table>.json``.
    folder_root: Path | None = None

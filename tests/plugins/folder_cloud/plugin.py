"""The folder cloud, as the cloud registry knows it."""

from __future__ import annotations

from pathlib import Path

from bucketscribe.clouds.plugin import CloudPlugin
from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.ports.event_bus import EventBus
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import NoSecretStore, SecretStore
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.settings import Settings
from tests.plugins.folder_cloud.settings import FolderSettings

NO_ROOT = "BUCKETSCRIBE_FOLDER_ROOT is not set: the folder cloud has nowhere to live"


def _root() -> Path:
    root = FolderSettings().folder_root
    if root is None:
        raise ValueError(NO_ROOT)  # refused at start by settings_problems; here for a caller that skipped it
    return root


class FolderCloud:
    name = "folder"
    uri_scheme = "file"

    def settings_problems(self, settings: Settings) -> list[str]:
        if FolderSettings().folder_root is None:
            return [NO_ROOT]
        return []

    def secret_store(self) -> SecretStore:
        # Every secret is given directly: there is no store to name one in.
        return NoSecretStore()

    def storage(self) -> ObjectStorage:
        from tests.plugins.folder_cloud.storage import FolderStorage

        return FolderStorage(_root() / "buckets")

    def job_store(self, settings: Settings, secrets: SecretStore) -> JobStore:
        from tests.plugins.folder_cloud.job_store import JsonFileJobStore

        return JsonFileJobStore(_root() / f"{settings.jobs_table}.json")

    def dead_letters(self, storage: ObjectStorage) -> DeadLetters | None:
        return None  # uploads are handed to the submit use case directly: nothing can fail delivery

    def event_bus(self) -> EventBus | None:
        return None  # nobody subscribes to a folder


CLOUD: CloudPlugin = FolderCloud()

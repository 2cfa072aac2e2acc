"""What the cloud registry knows of a cloud: how to build its adapters from the environment.

Each ``clouds/<name>/`` folder offers one ``CloudPlugin``; the registry (``clouds/registry.py``)
lists them, and ``BUCKETSCRIBE_CLOUD`` picks the one a deployment runs on. A cloud reads its own
settings (``clouds/<name>/settings.py``) when it builds its adapters.
"""

from __future__ import annotations

from typing import Protocol

from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.ports.event_bus import EventBus
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import SecretStore
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.settings import Settings


class CloudPlugin(Protocol):
    name: str
    # How a user writes an object's address on this cloud (``s3://bucket/key``).
    uri_scheme: str

    def settings_problems(self, settings: Settings) -> list[str]:
        """What in this cloud's settings contradicts itself or the deployment's."""
        ...

    def secret_store(self) -> SecretStore: ...

    def storage(self) -> ObjectStorage: ...

    def job_store(self, settings: Settings, secrets: SecretStore) -> JobStore: ...

    def dead_letters(self, storage: ObjectStorage) -> DeadLetters | None:
        """Upload events that failed every delivery, where this deployment collects them."""
        ...

    def event_bus(self) -> EventBus | None:
        """Where jobs' events are published on this cloud, if this deployment names a bus."""
        ...

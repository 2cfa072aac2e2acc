"""What the use cases are given: ports plus the settings that shape their decisions.

Function entry points build one of these from the environment; tests build one
from in-memory fakes. No use case imports an SDK.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bucketscribe.callback_auth import CallbackSigner
from bucketscribe.jobs.base import JobStore
from bucketscribe.media.extract import ExtractedAudio
from bucketscribe.model import ObjectRef, utc_now
from bucketscribe.output_keys import OutputLayout
from bucketscribe.profiles import ProfileSet
from bucketscribe.providers.base import Provider
from bucketscribe.storage.base import ObjectStorage


@dataclass(frozen=True)
class Limits:
    max_media_bytes: int = 300 * 1024 * 1024
    max_media_duration_s: int = 5 * 3600
    presign_expiry_s: int = 12 * 3600
    # First reconcile look at a submitted job; callbacks normally beat it. Later looks back off
    # exponentially up to the cap; a job still unfinished at the deadline fails with the reason.
    first_check_after: timedelta = timedelta(minutes=10)
    max_check_interval: timedelta = timedelta(minutes=30)
    job_deadline: timedelta = timedelta(hours=12)
    # How long one worker owns an ACCEPTED job while submitting it; keep it below the
    # queue's visibility timeout so a crashed worker's redelivered message can take over.
    claim_lease: timedelta = timedelta(minutes=5)


class SpeechExtractor(Protocol):
    def extract(self, source: ObjectRef, dest_key: str) -> ExtractedAudio:
        """Store the upload's speech track as 16 kHz mono Opus at ``dest_key``."""
        ...


@dataclass
class PipelinePorts:
    storage: ObjectStorage
    jobs: JobStore
    providers: Mapping[str, Provider]
    signer: CallbackSigner
    layout: OutputLayout
    profiles: ProfileSet
    callback_base_url: str
    limits: Limits = field(default_factory=Limits)
    # None where PyAV is not installed: uploads then go to the provider as they are.
    extractor: SpeechExtractor | None = None
    clock: Callable[[], datetime] = utc_now

    def provider(self, name: str) -> Provider:
        try:
            return self.providers[name]
        except KeyError:
            raise LookupError(f"provider {name!r} is not configured in this deployment") from None

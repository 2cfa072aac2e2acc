from __future__ import annotations

import pytest

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.pipeline.context import Limits
from tests.fakes import FakePorts, FakeProvider, InMemoryJobStore, InMemoryStorage, SettableClock
from tests.profiles import profile


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def ports(provider: FakeProvider) -> FakePorts:
    clock = SettableClock()
    provider.clock = clock
    return FakePorts(
        storage=InMemoryStorage(),
        jobs=InMemoryJobStore(),
        providers={"sis": provider},
        signer=CallbackSigner(b"unit-test-secret-0123456789"),
        layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
        profiles=ProfileSet(
            profiles=[
                profile(),
                profile(name="calls", prefix="calls/", language="en", outputs=["json", "txt"]),
            ]
        ),
        callback_base_url="https://cb.example.com/prod",
        limits=Limits(max_media_bytes=1_000_000, max_media_duration_s=60),
        clock=clock,
    )

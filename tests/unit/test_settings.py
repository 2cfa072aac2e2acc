"""Settings that contradict each other are refused when they load, naming both and why."""

import json
from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from bucketscribe.settings import Settings
from bucketscribe.wiring import environment_settings

pytestmark = pytest.mark.unit

DASHSCOPE = json.dumps([{"name": "default", "prefix": "", "provider": "dashscope"}])


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    import os

    for name in list(os.environ):
        if name.startswith("BUCKETSCRIBE_"):
            monkeypatch.delenv(name)
    environment_settings.cache_clear()
    yield
    environment_settings.cache_clear()


def test_the_defaults_are_consistent() -> None:
    settings = Settings()
    assert settings.claim_lease_s < 1800 and settings.evidence_wait_s < settings.job_deadline_s


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"BUCKETSCRIBE_JOB_DEADLINE_S": str(30 * 3600), "BUCKETSCRIBE_PROFILES": DASHSCOPE},
            "dashscope keeps",
        ),
        ({"BUCKETSCRIBE_JOB_DEADLINE_S": str(80 * 3600)}, "sis keeps results"),
        ({"BUCKETSCRIBE_PRESIGN_EXPIRY_S": "3600"}, "SIS promises"),
        (
            {"BUCKETSCRIBE_PRESIGN_EXPIRY_S": "21600", "BUCKETSCRIBE_PROFILES": DASHSCOPE},
            "DashScope queues without a promise",
        ),
        ({"BUCKETSCRIBE_EVIDENCE_WAIT_S": "50000"}, "must be shorter than the job deadline"),
        ({"BUCKETSCRIBE_FIRST_CHECK_AFTER_S": "4000"}, "FIRST_CHECK_AFTER_S must not exceed"),
        ({"BUCKETSCRIBE_CLOUD": "gcp"}, "unknown cloud 'gcp'"),
        # An earlier release's way of choosing OBS: refused, not silently run on the default cloud.
        ({"BUCKETSCRIBE_STORAGE": "obs"}, "BUCKETSCRIBE_STORAGE is no longer read: set BUCKETSCRIBE_CLOUD"),
        ({"BUCKETSCRIBE_PROFILES": '[{"provider": "whisper-gpu"}]'}, "unknown provider 'whisper-gpu'"),
        (
            {
                "BUCKETSCRIBE_CLOUD": "huawei",
                "BUCKETSCRIBE_FAILED_INVOCATIONS_BUCKET": "recordings",
                "BUCKETSCRIBE_FAILED_INVOCATIONS_PREFIX": "incoming/failed/",
            },
            "every failure record would start the submit function",
        ),
    ],
)
def test_contradictions_are_refused_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], words: str
) -> None:
    """As a function's cold start reads them: the deployment's settings, then the cloud's and each
    provider's in use."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises((ValidationError, ValueError, LookupError), match=words):
        environment_settings()


def test_the_lease_is_checked_against_the_queues_real_visibility_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BUCKETSCRIBE_CLAIM_LEASE_S", "300")
    settings = Settings()
    assert settings.claim_lease_problem(1800) is None
    problem = settings.claim_lease_problem(300)
    assert problem is not None and "must be shorter than the upload queue's visibility timeout" in problem

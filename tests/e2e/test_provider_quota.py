"""A burst larger than SIS's account quota, through the whole local stack: the uploads the
emulator turns away (SIS.0312) wait in the queue and are sent as capacity comes back — none
fails, all are transcribed, and SIS never holds more than its quota at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.stack import LocalStack

from bucketscribe.domain.job import JobState
from tests.audio import tone_wav
from tests.e2e.conftest import stack_options
from tests.e2e.stack_calls import finished, upload_many

pytestmark = pytest.mark.e2e

QUOTA = 4
BURST = 60


@pytest.fixture(scope="module")
def quota_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = stack_options(Path(tmp_path_factory.mktemp("quota")))
    # Each recognition takes a moment, so a burst fills the quota as it would in the cloud.
    options = options.model_copy(
        update={
            "sis_max_concurrent_jobs": QUOTA,
            "sis_workers": 2,
            "capacity_retry_after_s": 1,
            "faults": FaultPlan(processing_delay_s=0.2),
        }
    )
    with LocalStack(options) as running:
        yield running


def test_a_burst_over_the_providers_quota_all_done_none_failed_never_over_the_quota(
    quota_stack: LocalStack,
) -> None:
    refs = upload_many(quota_stack, [f"incoming/quota/{i:03d}.wav" for i in range(BURST)], tone_wav(0.3))
    jobs = finished(quota_stack, refs)
    assert sorted({job.state for job in jobs.values()}) == [JobState.DONE]
    sis = quota_stack.sis.backend.counters()
    assert sis.submissions_rejected > 0, "the burst never met the quota: the test proves nothing"
    assert sis.most_waiting <= QUOTA
    # Turned away means queued, not an attempt: each upload has the one attempt that was sent.
    assert all(len(job.attempts) == 1 for job in jobs.values())
    assert sum(job.capacity_waits for job in jobs.values()) > 0

"""The local stack's state folder: what finished stays finished, what was in flight runs again."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.stack import LocalStack, LocalStackOptions

from bucketscribe.domain.job import JobState
from tests.audio import tone_wav

pytestmark = pytest.mark.e2e


def options(tmp_path: Path, cloud: Literal["aws", "huawei"]) -> LocalStackOptions:
    return LocalStackOptions(
        instant=True, state_dir=tmp_path / "state", log_file=tmp_path / "functions.log", cloud=cloud
    )


@pytest.mark.parametrize("cloud", ["aws", "huawei"])
def test_finished_jobs_are_kept_and_unfinished_uploads_run_again_after_a_restart(
    tmp_path: Path, cloud: Literal["aws", "huawei"]
) -> None:
    with LocalStack(options(tmp_path, cloud)) as stack:
        assert stack.restored is not None and stack.restored.objects == 0
        finished = stack.upload(tone_wav(1), "incoming/finished.wav")
        assert stack.wait_for_jobs([finished], timeout_s=60)[finished.key].state is JobState.DONE
        stack.set_faults(FaultPlan(processing_delay_s=600))  # the next one stays at the service
        in_flight = stack.upload(tone_wav(2), "incoming/in-flight.wav")
        for jobs in stack.watch([in_flight], timeout_s=60):
            if in_flight.key in jobs and jobs[in_flight.key].state is JobState.SUBMITTED:
                break
        first_run = stack.job(finished.job_id())
        keys_before = sorted(stack.list_keys())
    assert first_run is not None

    with LocalStack(options(tmp_path, cloud)) as again:
        assert again.restored is not None
        assert (again.restored.jobs, again.restored.rerun) == (1, 1)
        assert again.restored.objects == len(keys_before)
        assert again.job(finished.job_id()) == first_run  # kept as it was, not run again
        rerun = again.wait_for_jobs([in_flight], timeout_s=60)[in_flight.key]
        assert rerun.state is JobState.DONE and rerun.id == in_flight.job_id()  # same upload, same id
        assert again.read_output("transcripts/in-flight.wav.txt")
        assert set(keys_before) <= set(again.list_keys())

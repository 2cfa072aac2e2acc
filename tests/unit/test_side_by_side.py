"""An invocation's uploads are worked on side by side (header reads, job writes, one-file provider
submissions), results in order; their media is still made one at a time; ``Limits.side_by_side``
1 works one after another. Concurrency is shown by a barrier the work must reach together (with a
deadline), never by timing."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace

import pytest

from bucketscribe.domain.job import JobState
from bucketscribe.domain.profile import Profile
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.steps.side_by_side import both, side_by_side
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.ports.provider import SubmitItem, SubmitReceipt
from tests.audio import tone_wav
from tests.fakes import FakeMediaTools, FakePorts, FakeProvider
from tests.unit.test_submit_uploads import AAC_VIDEO, MP4_HEAD

pytestmark = pytest.mark.unit

DEADLINE_S = 30.0


def uploads(
    ports: FakePorts, count: int, *, extension: str = "wav", body: bytes | None = None
) -> list[ObjectRef]:
    refs = []
    for index in range(count):
        key = f"incoming/batch/{index:03d}.{extension}"
        ports.storage.add("recordings", key, body if body is not None else tone_wav(1))
        refs.append(ObjectRef(bucket="recordings", key=key))
    return refs


def meet_at_the_provider(provider: FakeProvider, together: int, deadline_s: float = DEADLINE_S) -> set[str]:
    """Each submission waits until ``together`` of them are in the provider at once (a barrier
    with a deadline): a pipeline that submits one after another breaks the barrier, and the
    submission fails as an SDK error would. Returns the names of the threads that submitted."""
    barrier = threading.Barrier(together, timeout=deadline_s)
    threads: set[str] = set()
    inner = provider.submit

    def submit(items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        threads.add(threading.current_thread().name)
        barrier.wait()
        return inner(items, profile)

    provider.submit = submit
    return threads


def test_one_file_tasks_of_a_batch_are_submitted_side_by_side_and_results_keep_their_order(
    ports: FakePorts, provider: FakeProvider
) -> None:
    threads = meet_at_the_provider(provider, 4)
    refs = uploads(ports, 8)
    results = submit_uploads(refs, ports)
    assert [r.outcome for r in results] == [UploadOutcome.SUBMITTED] * 8
    assert [r.source.key for r in results] == [ref.key for ref in refs]
    # Each job is bound to the task its own submission created.
    for result in results:
        job = ports.jobs.get(result.job_id)
        (task,) = provider.tasks_for(job.id)
        assert job.state is JobState.SUBMITTED and job.provider_task_id == task
    assert len(threads) >= 4


def test_width_one_submits_one_after_another(ports: FakePorts, provider: FakeProvider) -> None:
    # One after another, the two can never meet, however long the first waits.
    threads = meet_at_the_provider(provider, 2, deadline_s=1.0)
    ports.limits = replace(ports.limits, side_by_side=1)
    results = submit_uploads(uploads(ports, 2), ports)
    # The first submission waited alone: the barrier broke, the call failed as an SDK error would.
    assert UploadOutcome.SUBMITTED not in [r.outcome for r in results]
    assert len(threads) == 1


class CountingMediaTools(FakeMediaTools):
    """Records how many conversions run at once."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def write(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            threading.Event().wait(0.02)  # long enough for others to start, were they allowed
            return super().write(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with self._lock:
                self.running -= 1


def test_media_is_made_one_upload_at_a_time_while_the_uploads_are_taken_side_by_side(
    ports: FakePorts, provider: FakeProvider
) -> None:
    tools = CountingMediaTools(ports.storage)
    ports.media_tools = tools
    refs = uploads(ports, 6, extension="mp4", body=MP4_HEAD)
    for ref in refs:
        tools.probes[ref.key] = AAC_VIDEO  # a video: its audio is copied out (media is made)
    results = submit_uploads(refs, ports)
    assert [r.outcome for r in results] == [UploadOutcome.SUBMITTED] * 6
    assert len(tools.writes) == 6 and tools.most_at_once == 1


def test_the_helper_keeps_order_and_raises_once_the_started_items_are_done() -> None:
    assert side_by_side(lambda n: n * n, list(range(40)), 8) == [n * n for n in range(40)]
    finished: list[int] = []
    started = threading.Barrier(4, timeout=DEADLINE_S)

    def step(n: int) -> int:
        started.wait()  # all four are under way
        if n == 3:
            raise ValueError("three")
        threading.Event().wait(0.05)  # still working when the error is raised
        finished.append(n)
        return n

    with pytest.raises(ValueError, match="three"):
        side_by_side(step, list(range(4)), 4)
    assert sorted(finished) == [0, 1, 2]  # nothing left running behind the caller's back
    # Named after the thread that asked, so logs and call counts say whose work it is.
    names = side_by_side(lambda _: threading.current_thread().name, [1, 2], 2)
    assert all(name.startswith(threading.current_thread().name) for name in names)
    assert both(lambda: "a", lambda: 2) == ("a", 2)

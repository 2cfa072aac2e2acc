"""A task found through a callback (its submit answer was lost) is bound only when it is proven to
be this attempt's: created while the attempt was submitted, bound to no other job, and its audio
this upload's length. SIS (or anyone holding the URL) sending another upload's task to this URL
writes nothing and costs the real owner nothing."""

from __future__ import annotations

import pytest

from bucketscribe.domain.job import AttemptState, JobState
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import Completion, CompletionOutcome, complete_callback, same_audio
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.provider import ProviderError
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, claim_from_callback_url, known

pytestmark = pytest.mark.unit

LOST = ProviderError("SIS.0100", "internal error", retryable=True, maybe_done=True)


def lost_answer(ports: FakePorts, provider: FakeProvider, name: str, seconds: float) -> tuple[str, str, str]:
    """An upload whose submit answer was lost: (job id, its SIS task, its callback URL)."""
    ports.storage.add("recordings", f"incoming/{name}", tone_wav(seconds))
    provider.lose_answer = LOST
    (result,) = submit_uploads([ObjectRef(bucket="recordings", key=f"incoming/{name}")], ports)
    provider.lose_answer = None
    (task,) = provider.tasks_for(result.job_id)
    provider.finish(
        task,
        Transcript(
            provider="sis",
            duration_ms=int(seconds * 1000),
            segments=[Segment(start_ms=0, end_ms=500, text=f"words of {name}")],
        ),
    )
    items, _ = provider.submissions[-1]
    return known(result.job_id), task, items[0].callback_url or ""


def call_back(ports: FakePorts, url: str, task: str) -> Completion:
    _, claim = claim_from_callback_url(url)
    return complete_callback(claim, lambda: task, ports)


def test_another_uploads_task_sent_to_this_url_is_not_bound(ports: FakePorts, provider: FakeProvider) -> None:
    x, x_task, x_url = lost_answer(ports, provider, "x.wav", 1.0)
    y, y_task, y_url = lost_answer(ports, provider, "y.wav", 2.0)
    crossed = call_back(ports, x_url, y_task)
    assert crossed.outcome is CompletionOutcome.IGNORED and "not this upload's" in (crossed.reason or "")
    assert ports.jobs.get(x).state is JobState.SUBMITTING
    assert ports.storage.keys("transcripts/") == []
    # The real owner's own callback still binds its task: nothing paid twice.
    assert call_back(ports, y_url, y_task).outcome is CompletionOutcome.DONE
    assert b"words of y.wav" in ports.storage.get("recordings", "transcripts/y.wav.txt")
    assert call_back(ports, x_url, x_task).outcome is CompletionOutcome.DONE
    assert b"words of x.wav" in ports.storage.get("recordings", "transcripts/x.wav.txt")
    for job_id in (x, y):
        (attempt,) = ports.jobs.get(job_id).attempts
        assert attempt.state is AttemptState.ACCEPTED and attempt.bound_by == "callback"
    assert len(provider.submissions) == 2


def test_a_task_whose_result_does_not_say_how_long_its_audio_was_proves_nothing(
    ports: FakePorts, provider: FakeProvider
) -> None:
    x, x_task, x_url = lost_answer(ports, provider, "x.wav", 1.0)
    provider.results[x_task] = provider.results[x_task].model_copy(update={"audio_ms": None})
    assert call_back(ports, x_url, x_task).outcome is CompletionOutcome.IGNORED
    assert ports.jobs.get(x).state is JobState.SUBMITTING


@pytest.mark.parametrize(
    ("expected", "reported", "same"),
    [
        (1000, 1000, True),
        (1000, 1199, True),  # decoders differ by a codec's priming and padding
        (1000, 1300, False),
        (600_000, 605_000, True),  # 1 % of ten minutes: a header's rounding
        (600_000, 610_000, False),
        (None, 1000, False),
        (1000, None, False),
    ],
)
def test_same_audio_within_the_tolerance_only(expected: int, reported: int | None, same: bool) -> None:
    assert same_audio(expected, reported) is same

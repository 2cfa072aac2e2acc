"""What the completion use cases' outcomes count as metrics (every completing entry point's)."""

from __future__ import annotations

from collections.abc import Iterable

from aws_lambda_powertools.metrics import MetricUnit

from bucketscribe.domain.job import Job
from bucketscribe.observability import count, measure
from bucketscribe.pipeline.steps.finish import Completion, CompletionOutcome


def record_completions(completions: Iterable[Completion]) -> dict[str, int]:
    """Count finished/failed jobs and the audio they carried; returns counts by outcome."""
    counts: dict[str, int] = {}
    for completion in completions:
        counts[completion.outcome.value] = counts.get(completion.outcome.value, 0) + 1
        if completion.outcome is CompletionOutcome.DONE:
            count("JobsCompleted")
            if completion.job is not None:
                record_coverage(completion.job)
            if completion.audio_ms:
                measure("AudioSeconds", completion.audio_ms / 1000, MetricUnit.Seconds)
        elif completion.outcome is CompletionOutcome.FAILED:
            count("JobsFailed")
        elif completion.outcome is CompletionOutcome.IGNORED:
            count("CallbacksIgnored")
    return counts


def record_coverage(job: Job) -> None:
    """How much of a finished job's speech has text, and how many stretches of speech have none."""
    if job.coverage is not None and job.coverage.ratio is not None:
        measure("SpeechCoveredPercent", round(job.coverage.ratio * 100, 1), MetricUnit.Percent)
    holes = sum(1 for warning in job.warnings if warning.code == "SPEECH_WITHOUT_TEXT")
    if holes:
        count("SpeechWithoutText", holes)

"""Subtitle cues of a transcript: each segment's tokens, cut at sentence ends, laid out, timed.

The pieces: :mod:`tokens` (words with times, CJK spacing), :mod:`layout` (pieces and lines
within the limits), :mod:`timing` (durations, reading speed, overlapping speakers);
:mod:`bilingual` builds the two-language cues from the same pieces.
"""

from __future__ import annotations

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.domain.transcript import Transcript
from bucketscribe.render.layout import Budget, Draft, lay_out
from bucketscribe.render.speakers import shows_labels, voice_of
from bucketscribe.render.timing import Cue, timed_cues
from bucketscribe.render.tokens import sentences, split_long_token, tokens_for_segment


def build_cues(transcript: Transcript, options: RenderOptions) -> list[Cue]:
    """Cues for the whole transcript: per segment, split at sentence ends, then at the limits.

    In dialogue style a segment that overlaps another speaker's is laid out one line per
    cue, so that each of its cues can share a cue with the other speaker's line.
    """
    labelled = shows_labels(transcript, options)
    crossing = crossing_segments(transcript) if options.overlap == "dialogue" else set()
    budgets: dict[tuple[str | None, bool], Budget] = {}
    drafts: list[Draft] = []
    for index, segment in enumerate(transcript.segments):
        voice = voice_of(segment, transcript)
        key = (voice if labelled else None, index in crossing)
        budget = budgets.get(key)
        if budget is None:
            label, one_line = key
            budget = Budget.for_voice(label, options, lines=1 if one_line else None, dash=one_line)
            budgets[key] = budget
        tokens = tokens_for_segment(segment)
        room = min(budget.first_line, budget.chars)
        # A token is never wider than twice its length: most need no look at their characters.
        if any(2 * len(token.text) > room for token in tokens):
            tokens = [
                piece
                for token in tokens
                for piece in split_long_token(token, budget.first_line, budget.chars)
            ]
        for sentence in sentences(tokens):
            drafts.extend(lay_out(sentence, budget, voice))
    return timed_cues(drafts, options)


def crossing_segments(transcript: Transcript) -> set[int]:
    """Indexes of the segments whose time overlaps a segment of another voice."""
    order = sorted(range(len(transcript.segments)), key=lambda n: transcript.segments[n].start_ms)
    crossing: set[int] = set()
    active: list[int] = []  # segments not yet ended at the current start
    for index in order:
        segment = transcript.segments[index]
        voice = voice_of(segment, transcript)
        active = [n for n in active if transcript.segments[n].end_ms > segment.start_ms]
        for other in active:
            if voice_of(transcript.segments[other], transcript) != voice:
                crossing.update((index, other))
        active.append(index)
    return crossing

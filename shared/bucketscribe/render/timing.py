"""Cue timing: when each laid-out draft is shown, and how overlapping speakers are shown.

Every cue obeys the same three rules, whatever the overlap style:

- it is never shorter than the speech of the words it shows (a cue may start after its
  speech, never end before its length is up);
- it is never faster to read than ``max_cps`` (display columns per second), and never
  shorter than ``min_cue_ms``;
- one speaker's cues never overlap each other: when a cue needs longer than its speech to be
  read, that speaker's next cue waits for it (and catches up at the next pause).

A cue is therefore as long as the longest of its speech, its reading time and the minimum;
the layout keeps its text within what can be read in ``max_cue_ms``, so only a single word
spoken for longer than that makes a longer cue.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.render.layout import Draft, srt_prefix


@dataclass(frozen=True, slots=True)
class Turn:
    """One speaker's lines in a cue, and the name shown with them (None: no label)."""

    label: str | None
    lines: tuple[str, ...]


@dataclass(slots=True)
class Cue:
    """One subtitle: its time span, its turns (two in a dialogue cue) and its placement.

    ``top_line`` is set on a cue shown while another is on screen: the WebVTT line (counted
    from the top) that keeps the two apart.  ``speech_*`` is the span of the words it shows,
    ``track`` whose words they are (None for a dialogue cue, which holds two speakers).
    """

    start_ms: int
    end_ms: int
    turns: list[Turn]
    speech_start_ms: int
    speech_end_ms: int
    track: str | None = None
    top_line: int | None = None

    @property
    def lines(self) -> list[str]:
        return [line for turn in self.turns for line in turn.lines]

    @property
    def is_dialogue(self) -> bool:
        return len(self.turns) > 1


@dataclass(slots=True)
class _Unit:
    """What one cue will show: a draft, or two overlapping drafts in dialogue style."""

    turns: list[Turn]
    track: str | None
    speech_start_ms: int
    speech_end_ms: int
    reading: int

    @classmethod
    def of(cls, draft: Draft) -> _Unit:
        turn = Turn(draft.label, tuple(draft.lines))
        return cls([turn], draft.track, draft.speech_start_ms, draft.speech_end_ms, draft.reading)


def timed_cues(drafts: Sequence[Draft], options: RenderOptions, *, bilingual: bool = False) -> list[Cue]:
    """Drafts timed and placed in ``options.overlap`` style (bilingual cues: always simultaneous)."""
    if options.overlap == "dialogue" and not bilingual:
        return _one_at_a_time(_paired(drafts, options), options)
    return _simultaneous(drafts, options, lines_per_cue=2 if bilingual else options.max_lines)


def _simultaneous(drafts: Sequence[Draft], options: RenderOptions, lines_per_cue: int) -> list[Cue]:
    """Each speaker's cues in sequence; different speakers' cues overlap as their speech does."""
    by_track: dict[str | None, list[_Unit]] = {}
    for draft in drafts:
        by_track.setdefault(draft.track, []).append(_Unit.of(draft))
    cues: list[Cue] = []
    for units in by_track.values():
        cues.extend(_one_at_a_time(units, options))
    cues.sort(key=lambda cue: cue.start_ms)  # stable: a tie keeps the first speaker first
    _place_side_by_side(cues, lines_per_cue)
    return cues


def _one_at_a_time(units: list[_Unit], options: RenderOptions) -> list[Cue]:
    """Cues that follow each other: each starts with its speech, or when the one before ends."""
    units.sort(key=lambda unit: unit.speech_start_ms)  # stable: equal starts keep text order
    shortest = options.shortest_cue_ms
    cues = []
    free_from = 0
    for unit in units:
        start = max(unit.speech_start_ms, free_from)
        speech = unit.speech_end_ms - unit.speech_start_ms
        end = start + max(speech, options.reading_ms(unit.reading), shortest, 1)
        cues.append(Cue(start, end, unit.turns, unit.speech_start_ms, unit.speech_end_ms, unit.track))
        free_from = end
    return cues


def _place_side_by_side(cues: Sequence[Cue], lines_per_cue: int) -> None:
    """Give each cue shown while another is on screen its own WebVTT line, from the top.

    Cues (in start order) take the lowest lane free at their start; lane 0 is the usual
    place at the bottom, lane 1 the top line, lane 2 the lines below it, and so on.
    """
    lane_free_from: list[int] = []
    for cue in cues:
        lane = next((n for n, free in enumerate(lane_free_from) if free <= cue.start_ms), len(lane_free_from))
        if lane == len(lane_free_from):
            lane_free_from.append(cue.end_ms)
        else:
            lane_free_from[lane] = cue.end_ms
        cue.top_line = None if lane == 0 else (lane - 1) * lines_per_cue


def _paired(drafts: Iterable[Draft], options: RenderOptions) -> list[_Unit]:
    """Dialogue style: a one-line draft shares a cue with the other speaker's line it overlaps.

    A line is kept for a later draft of the same speaker when that one overlaps it more.
    Only pairs whose cue stays within ``max_cue_ms`` (both in speech and in reading time)
    are joined; the others are shown one after the other.
    """
    ordered = sorted(drafts, key=lambda draft: draft.speech_start_ms)
    taken = [False] * len(ordered)
    units: list[_Unit] = []
    for index, draft in enumerate(ordered):
        if taken[index]:
            continue
        unit = _Unit.of(draft)
        partner = _partner(ordered, taken, index, options) if len(draft.lines) == 1 else None
        if partner is not None:
            taken[partner] = True
            other = ordered[partner]
            unit = _Unit(
                [*unit.turns, *_Unit.of(other).turns],
                None,
                draft.speech_start_ms,
                max(draft.speech_end_ms, other.speech_end_ms),
                draft.reading + other.reading,
            )
        units.append(unit)
    return units


def _partner(
    ordered: Sequence[Draft], taken: Sequence[bool], index: int, options: RenderOptions
) -> int | None:
    """The other speaker's one-line draft that overlaps ``ordered[index]`` and fits with it.

    Only each speaker's next draft may be taken: a later one would be shown before it.
    """
    draft = ordered[index]
    passed: set[str | None] = {draft.track}
    for other in range(index + 1, len(ordered)):
        candidate = ordered[other]
        if candidate.speech_start_ms >= draft.speech_end_ms:
            return None
        if taken[other] or candidate.track in passed:
            continue
        passed.add(candidate.track)
        if _fit_together(draft, candidate, options) and not _better_later(ordered, taken, index, candidate):
            return other
    return None


def _better_later(ordered: Sequence[Draft], taken: Sequence[bool], index: int, candidate: Draft) -> bool:
    """Whether a later draft of ``ordered[index]``'s speaker overlaps ``candidate`` more."""
    draft = ordered[index]
    mine = _overlap_ms(draft, candidate)
    for later in range(index + 1, len(ordered)):
        rival = ordered[later]
        if rival.speech_start_ms >= candidate.speech_end_ms:
            return False
        if rival.track == draft.track and not taken[later] and _overlap_ms(rival, candidate) > mine:
            return True
    return False


def _overlap_ms(first: Draft, second: Draft) -> int:
    return min(first.speech_end_ms, second.speech_end_ms) - max(first.speech_start_ms, second.speech_start_ms)


def _fit_together(first: Draft, second: Draft, options: RenderOptions) -> bool:
    span = max(first.speech_end_ms, second.speech_end_ms) - first.speech_start_ms
    chars = sum(len(srt_prefix(d.label, True)) + len(d.lines[0]) for d in (first, second))
    return (
        len(second.lines) == 1
        and span <= options.max_cue_ms
        and chars <= options.cue_chars
        and options.reading_ms(first.reading + second.reading) <= options.max_cue_ms
    )

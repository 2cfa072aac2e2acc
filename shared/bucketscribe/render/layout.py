"""Cue layout: a sentence of tokens cut into cue-sized pieces, each broken into lines.

A piece fits when its text fits the lines (greedy filling, which needs the fewest lines),
stays within the cue's characters and what can be read in the longest cue at the
reading-speed limit, and its speech lasts no longer than that cue.  Among the ways to cut a
sentence into the fewest pieces, the one with the most even widths is taken, and a piece
of two lines is broken where the lines come out most even.  Nothing here decides times:
a :class:`Draft` carries the span of the speech it shows to :mod:`timing`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate, pairwise

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.render.tokens import Token, display_width, is_punctuation, join_tokens


@dataclass(slots=True)
class Draft:
    """Laid-out text not yet timed: its lines, the label shown, and the speech it shows.

    ``track`` is whose speech it is, also when labels are off: one track's cues follow each
    other, different tracks may overlap.  ``reading`` is the display columns a reader reads.
    """

    lines: list[str]
    label: str | None
    track: str | None
    speech_start_ms: int
    speech_end_ms: int
    reading: int


def srt_prefix(label: str | None, dash: bool) -> str:
    """What a SubRip line starts with: ``-`` for one speaker of a two-speaker cue, ``[name] ``."""
    return ("-" if dash else "") + (f"[{label}] " if label is not None else "")


@dataclass(frozen=True, slots=True)
class Budget:
    """Room in one cue, once the speaker label (if any) has taken its share of the first line."""

    label: str | None
    first_line: int
    line: int
    lines: int
    chars: int
    reading: int
    max_ms: int

    @classmethod
    def for_voice(
        cls, label: str | None, options: RenderOptions, *, lines: int | None = None, dash: bool = False
    ) -> Budget:
        """The room for ``label``'s text; ``dash`` when it may share a cue with another speaker."""
        lines = lines or options.max_lines
        # Never more on a line than can be read in the longest cue.
        reading = options.readable_columns
        line = min(options.line_chars, options.max_cue_chars or options.line_chars, reading)
        if label is not None:
            # "[name] " must leave room for text; very long names are shortened.
            room = max(1, line // 2 - 3)
            if display_width(label) > room:
                label = _truncate(label, room)
        prefix = srt_prefix(label, dash)
        return cls(
            label=label,
            first_line=max(1, line - display_width(prefix)),
            line=line,
            lines=lines,
            chars=max(1, options.cue_chars - len(prefix)),
            reading=reading,
            max_ms=options.max_cue_ms,
        )


def _truncate(text: str, width: int) -> str:
    out = ""
    for char in text:
        if display_width(out + char + "…") > width:
            break
        out += char
    return out.rstrip() + "…"


class Run:
    """A sentence of tokens with prefix sums, so any slice's width is found in O(1)."""

    __slots__ = ("_chars", "_spaces", "_width", "lengths", "token_widths", "tokens")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = list(tokens)
        self.token_widths = [display_width(token.text) for token in self.tokens]
        self.lengths = [len(token.text) for token in self.tokens]
        self._width = [0, *accumulate(self.token_widths)]
        self._chars = [0, *accumulate(self.lengths)]
        self._spaces = [0, *accumulate(token.space_before for token in self.tokens)]

    def __len__(self) -> int:
        return len(self.tokens)

    def _gaps(self, i: int, j: int) -> int:
        return self._spaces[j] - self._spaces[i + 1] if j > i + 1 else 0

    def width(self, i: int, j: int) -> int:
        """Display columns of tokens[i:j] written on one line."""
        return self._width[j] - self._width[i] + self._gaps(i, j)

    def chars(self, i: int, j: int) -> int:
        return self._chars[j] - self._chars[i] + self._gaps(i, j)

    def text(self, i: int, j: int) -> str:
        return join_tokens(self.tokens[i:j])

    def span(self, i: int, j: int) -> tuple[int, int]:
        """When the speech of tokens[i:j] starts and ends."""
        window = self.tokens[i:j]
        return min(t.start_ms for t in window), max(t.end_ms for t in window)


# --- cutting a sentence into pieces -----------------------------------------------------------


def pack(run: Run, budget: Budget, lines: int, cap: float) -> list[tuple[int, int]]:
    """Greedy packing: each piece takes tokens while they fit and stay within ``cap`` columns.

    The lines are filled greedily as the piece grows, which is O(1) per token and needs
    the fewest lines there are, so the whole packing is linear in the sentence.  (This is
    the hot loop of rendering a long transcript, hence the local variables.)
    """
    tokens, widths, lengths = run.tokens, run.token_widths, run.lengths
    most_columns = min(cap, budget.reading)
    most_chars, max_ms = budget.chars, budget.max_ms
    first_line, line = budget.first_line, budget.line
    pieces: list[tuple[int, int]] = []
    i, count = 0, len(tokens)
    while i < count:
        start, end = tokens[i].start_ms, tokens[i].end_ms
        columns, chars = widths[i], lengths[i]
        line_count, used = 1, columns
        j = i + 1
        while j < count:
            token = tokens[j]
            step = widths[j] + token.space_before
            columns += step
            chars += lengths[j] + token.space_before
            if token.start_ms < start:
                start = token.start_ms
            if token.end_ms > end:
                end = token.end_ms
            if columns > most_columns or chars > most_chars or end - start > max_ms:
                break
            if used + step <= (first_line if line_count == 1 else line):
                used += step
            elif line_count < lines:
                line_count, used = line_count + 1, widths[j]
            else:
                break
            j += 1
        pieces.append((i, j))
        i = j
    return pieces


def balanced_pieces(
    run: Run, budget: Budget, lines: int, at_most: int | None = None
) -> list[tuple[int, int]]:
    """The fewest pieces that fit (or ``at_most`` pieces), with widths as even as possible.

    Greedy packing alone leaves a short orphan at the end of a sentence; searching for the
    smallest width cap that needs no more pieces spreads the words evenly instead.
    """
    fewest = pack(run, budget, lines, math.inf)
    target = len(fewest) if at_most is None else max(at_most, len(fewest))
    if target == 1:
        return fewest
    total = run.width(0, len(run))
    # No cap below the widest token, nor below an even share of the width, can do it.
    low = max(max(run.token_widths), -(-(total - target + 1) // target))
    high = max(run.width(i, j) for i, j in fewest) - 1
    best = fewest
    while low <= high:
        cap = (low + high) // 2
        pieces = pack(run, budget, lines, cap)
        if len(pieces) <= target:
            best, high = pieces, cap - 1
        else:
            low = cap + 1
    return best


# --- breaking a piece into lines --------------------------------------------------------------


def line_texts(run: Run, i: int, j: int, budget: Budget, lines: int) -> list[str]:
    """The lines of tokens[i:j]: one if it fits, else the most even break into ``lines``."""
    if run.width(i, j) <= budget.first_line or lines == 1:
        starts = [i]
    elif lines == 2 or len(_greedy_starts(run, i, j, budget, math.inf)) == 2:
        starts = [i, _best_break(run, i, j, budget)]
    else:
        starts = _even_starts(run, i, j, budget, lines)
    return [run.text(a, b) for a, b in pairwise([*starts, j])]


def _best_break(run: Run, i: int, j: int, budget: Budget) -> int:
    """Where two lines read best: the most even (label included), after punctuation on a tie."""
    label = budget.line - budget.first_line
    whole = run.width(i, j)
    best_score: tuple[int, int, int] | None = None
    best_break = i + 1
    top = run.token_widths[i]
    for k in range(i + 1, j):
        # One line's columns and the other's add up to the whole less the space between.
        bottom = whole - top - run.tokens[k].space_before
        if top <= budget.first_line and bottom <= budget.line:
            score = (max(top + label, bottom), 0, top)
            if best_score is None or score <= best_score:
                # A break after punctuation wins a tie (the only check that needs the text).
                score = (score[0], int(not is_punctuation(run.tokens[k - 1].text[-1])), top)
                if best_score is None or score < best_score:
                    best_score, best_break = score, k
        top += run.token_widths[k] + run.tokens[k].space_before
    return best_break


def _greedy_starts(run: Run, i: int, j: int, budget: Budget, cap: float) -> list[int]:
    """Line starts when each line takes tokens while it stays within its room and ``cap``."""
    label = budget.line - budget.first_line
    starts, used = [i], label + run.token_widths[i]
    for k in range(i + 1, j):
        step = run.token_widths[k] + run.tokens[k].space_before
        room = min(cap, budget.line)
        if used + step <= room:
            used += step
        else:
            starts.append(k)
            used = run.token_widths[k]
    return starts


def _even_starts(run: Run, i: int, j: int, budget: Budget, lines: int) -> list[int]:
    """Three or more lines: the smallest line width (label included) that still needs ``lines``."""
    low, high = max(run.token_widths[i:j]), budget.line
    best = _greedy_starts(run, i, j, budget, high)
    while low <= high:
        cap = (low + high) // 2
        starts = _greedy_starts(run, i, j, budget, cap)
        if len(starts) <= lines:
            best, high = starts, cap - 1
        else:
            low = cap + 1
    return best


def lay_out(tokens: Sequence[Token], budget: Budget, track: str | None) -> list[Draft]:
    """A sentence as drafts of cues: cut into the fewest even pieces, each broken into lines."""
    run = Run(tokens)
    drafts = []
    for i, j in balanced_pieces(run, budget, budget.lines):
        lines = line_texts(run, i, j, budget, budget.lines)
        start, end = run.span(i, j)
        reading = sum(display_width(line) for line in lines)
        drafts.append(Draft(lines, budget.label, track, start, end, reading))
    return drafts

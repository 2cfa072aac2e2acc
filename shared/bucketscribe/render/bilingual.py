"""Bilingual cues: one original line over one translated line, the two matched by time.

Every original token goes to the translated segment it overlaps most; consecutive tokens
of one speaker and one translated segment form a group, and each group is cut into as many
cues as it takes for both its original and its translated text to fit on one line each.
A translated segment with no original under it gets cues of its own.  Cues are timed like
plain ones (:mod:`timing`), always in the simultaneous style: a cue already holds two
lines, so two speakers cannot share one.  Each reader reads one of the two languages, so
the reading speed is that of the longer line.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from itertools import pairwise

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.domain.transcript import Transcript, TranslatedSegment, Translation
from bucketscribe.render.layout import Budget, Draft, Run, balanced_pieces, pack
from bucketscribe.render.speakers import shows_labels, voice_of
from bucketscribe.render.timing import Cue, timed_cues
from bucketscribe.render.tokens import (
    Token,
    display_width,
    join_tokens,
    sentences,
    split_long_token,
    tokens_for_segment,
    tokens_from_text,
)

TRANSLATION_SLACK_MS = 300
"""How far outside a translated segment a word may lie and still be matched to it."""

_Group = tuple[int | None, Budget, str | None, list[Token]]
"""(translated segment, budget, track, original tokens) of one run of matched tokens."""


def build_bilingual_cues(
    transcript: Transcript, translation: Translation, options: RenderOptions
) -> list[Cue]:
    """Cues of one original line over one translated line, for the whole transcript."""
    labelled = shows_labels(transcript, options)
    targets = sorted(translation.segments, key=lambda s: (s.start_ms, s.end_ms))
    groups: list[_Group] = []
    for segment in transcript.segments:
        voice = voice_of(segment, transcript)
        budget = Budget.for_voice(voice if labelled else None, options, lines=1)
        half_chars = max(1, budget.chars // 2)
        for token in tokens_for_segment(segment):
            for piece in split_long_token(token, budget.first_line, half_chars):
                target = _best_overlap(piece, targets)
                if groups and groups[-1][0] == target and groups[-1][1] == budget and groups[-1][2] == voice:
                    groups[-1][3].append(piece)
                else:
                    groups.append((target, budget, voice, [piece]))

    shares = _share_translations(groups, targets)
    drafts: list[Draft] = []
    for (_, budget, track, tokens), translated in zip(groups, shares, strict=True):
        originals = list(sentences(tokens))
        parts = list(sentences(translated))
        if len(parts) != len(originals):
            parts = _proportional_split(translated, [display_width(join_tokens(s)) for s in originals])
        for sentence, part in zip(originals, parts, strict=True):
            drafts.extend(_group_drafts(sentence, part, budget, track))
    matched = {target for target, _, _, _ in groups}
    no_voice = Budget.for_voice(None, options, lines=1)
    for index, target_segment in enumerate(targets):
        if index not in matched and target_segment.text.strip():
            # A translation with no original under it still deserves to be seen.
            translated = tokens_from_text(target_segment.text, target_segment.start_ms, target_segment.end_ms)
            drafts.extend(
                _spread_drafts([], translated, target_segment.start_ms, target_segment.end_ms, no_voice, None)
            )
    return timed_cues(drafts, options, bilingual=True)


def _draft(lines: list[str], label: str | None, track: str | None, start_ms: int, end_ms: int) -> Draft:
    reading = max(display_width(line) for line in lines)
    return Draft(lines, label, track, start_ms, end_ms, reading)


def _best_overlap(token: Token, targets: Sequence[TranslatedSegment]) -> int | None:
    if not targets:
        return None
    # Translated segments are ordered and rarely overlap: only the neighbours of the
    # token's position can be the best match, so the search stays linear overall.
    low, high = 0, len(targets)
    while low < high:
        middle = (low + high) // 2
        if targets[middle].start_ms < token.end_ms:
            low = middle + 1
        else:
            high = middle
    candidates = range(max(0, low - 3), min(len(targets), low + 1))
    middle_ms = (token.start_ms + token.end_ms) / 2

    def closeness(index: int) -> tuple[float, float]:
        target = targets[index]
        overlap = min(token.end_ms, target.end_ms) - max(token.start_ms, target.start_ms)
        distance = max(target.start_ms - middle_ms, middle_ms - target.end_ms, 0)
        return (-max(overlap, 0), distance)

    best = min(candidates, key=closeness)
    negative_overlap, distance = closeness(best)
    # A token in a gap between translations belongs to none of them, unless it just touches one.
    return best if negative_overlap < 0 or distance <= TRANSLATION_SLACK_MS else None


def _share_translations(groups: Sequence[_Group], targets: Sequence[TranslatedSegment]) -> list[list[Token]]:
    """Each group's part of its translated segment (split by original width if several share it)."""
    by_target: dict[int, list[int]] = {}
    for index, (target, _, _, _) in enumerate(groups):
        if target is not None:
            by_target.setdefault(target, []).append(index)
    shares: list[list[Token]] = [[] for _ in groups]
    for target, members in by_target.items():
        translated = tokens_from_text(targets[target].text, targets[target].start_ms, targets[target].end_ms)
        weights = [display_width(join_tokens(groups[member][3])) for member in members]
        for member, part in zip(members, _proportional_split(translated, weights), strict=True):
            shares[member] = part
    return shares


def _proportional_split(tokens: Sequence[Token], weights: Sequence[int]) -> list[list[Token]]:
    """Cut tokens into len(weights) consecutive parts whose widths follow the weights."""
    run = Run(tokens)
    if not sum(weights):
        weights = [1] * len(weights)
    total_weight = sum(weights)
    total_width = run.width(0, len(run)) if tokens else 0
    bounds = [0]
    seen = 0
    for weight in weights[:-1]:
        seen += weight
        goal = total_width * seen / total_weight
        cut = bounds[-1]
        while cut < len(tokens) and abs(run.width(0, cut + 1) - goal) <= abs(run.width(0, cut) - goal):
            cut += 1
        bounds.append(cut)
    bounds.append(len(tokens))
    return [list(tokens[a:b]) for a, b in pairwise(bounds)]


def _group_drafts(
    tokens: list[Token], translated: list[Token], budget: Budget, track: str | None
) -> list[Draft]:
    translated = [
        piece
        for token in translated
        for piece in split_long_token(token, budget.line, max(1, budget.chars // 2))
    ]
    run = Run(tokens)
    translated_width = Run(translated).width(0, len(translated)) if translated else 0
    # As many cues as the original needs, and at least one line per line of translation.
    wanted = max(len(pack(run, budget, 1, math.inf)), math.ceil(translated_width / budget.line))
    tried = 0
    while wanted <= len(run):
        pieces = balanced_pieces(run, budget, 1, wanted)
        if len(pieces) == tried:
            wanted += 1  # the width cap jumped past this count; ask for one more piece
            continue
        tried = len(pieces)
        parts = _proportional_split(translated, [run.width(i, j) for i, j in pieces])
        misfits = sum(
            not _part_fits(run, i, j, part, budget) for (i, j), part in zip(pieces, parts, strict=True)
        )
        if misfits:
            wanted = len(pieces) + misfits
            continue
        drafts = []
        for (i, j), part in zip(pieces, parts, strict=True):
            start, end = run.span(i, j)
            lines = [run.text(i, j), join_tokens(part)] if part else [run.text(i, j)]
            drafts.append(_draft(lines, budget.label, track, start, end))
        return drafts
    # The original cannot be cut finer: the translation is far longer than it.
    start, end = run.span(0, len(run))
    return _spread_drafts(tokens, translated, start, end, budget, track)


def _part_fits(run: Run, i: int, j: int, part: Sequence[Token], budget: Budget) -> bool:
    translated = Run(part)
    return (
        translated.width(0, len(part)) <= budget.line
        and run.chars(i, j) + translated.chars(0, len(part)) <= budget.chars
    )


def _spread_drafts(
    tokens: Sequence[Token],
    translated: Sequence[Token],
    start_ms: int,
    end_ms: int,
    budget: Budget,
    track: str | None,
) -> list[Draft]:
    """Last resort: one original token and one translated line per cue, spread evenly in time."""
    half_chars = max(1, budget.chars // 2)
    # Lines of translation only: time plays no part in cutting them (the spread times them).
    line_budget = Budget(None, budget.line, budget.line, 1, half_chars, budget.line, sys.maxsize)
    line_run = Run(
        [piece for token in translated for piece in split_long_token(token, budget.line, half_chars)]
    )
    lines = [line_run.text(i, j) for i, j in pack(line_run, line_budget, 1, math.inf)] if translated else []
    count = max(len(tokens), len(lines), math.ceil((end_ms - start_ms) / budget.max_ms), 1)
    slots: list[list[str]] = [["", ""] for _ in range(count)]
    for index, token in enumerate(tokens):
        slots[index * count // len(tokens)][0] = token.text
    for index, line in enumerate(lines):
        slots[index * count // len(lines)][1] = line
    drafts = []
    for index, (original, translated_line) in enumerate(slots):
        if not original and not translated_line:
            continue
        begin = start_ms + (end_ms - start_ms) * index // count
        finish = start_ms + (end_ms - start_ms) * (index + 1) // count
        label = budget.label if original else None
        shown = [text for text in (original, translated_line) if text]
        drafts.append(_draft(shown, label, track, begin, finish))
    return drafts

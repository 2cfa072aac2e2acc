"""Subtitle cues: a transcript cut into short, timed, readable pieces.

Both subtitle formats (SRT and WebVTT) render the same cues, so every limit
(characters, lines, duration, ordering, no overlap) is enforced here once.

Text is handled as *tokens*: words with times.  Tokens come from the
segment's words when the provider gave them, otherwise from the segment text
with times spread in proportion to characters.  Chinese and Japanese have no
spaces between words, so each token records whether a space preceded it, and
line widths are measured in display columns (a CJK character takes two).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

from bucketscribe.model import Segment, Transcript, TranslatedSegment, Translation
from bucketscribe.profiles import RenderOptions

LINE_COLUMNS = 42
"""Widest subtitle line, in display columns (the broadcast norm for latin text)."""

MAX_LINES = 2
TRANSLATION_SLACK_MS = 300
"""How far outside a translated segment a word may lie and still be matched to it."""
MIN_CUE_MS = 500
"""Shortest cue worth showing; cues are stretched to this where the next cue allows."""

_SPACELESS = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003134f]"
)
_TEXT_TOKEN = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003134f]|[^\\s\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff00-\uffef\U00020000-\U0003134f]+"
)
_CJK_GAP = re.compile(f"(?<={_SPACELESS.pattern}) (?={_SPACELESS.pattern})")
_OPENERS = "([{«“‘「『（《〈【〔〖［｛¿¡"
_CLOSERS = ")]}»”’」』）》〉】〕〗］｝\"'"
_NO_SPACE_BEFORE = ",.!?;:%…" + _CLOSERS + "、。，！？；：．"
_SENTENCE_ENDS = ".!?…。！？．"


def is_spaceless(char: str) -> bool:
    """True for characters of scripts written without spaces between words (CJK, kana)."""
    return bool(_SPACELESS.match(char))


def display_width(text: str) -> int:
    """Columns the text takes on screen: wide (CJK) characters count two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def needs_space(before: str, after: str) -> bool:
    """Whether a space belongs between two pieces of text that were never written together."""
    if not before or not after:
        return False
    last, first = before[-1], after[0]
    if is_spaceless(last) or is_spaceless(first):
        return False
    return first not in _NO_SPACE_BEFORE and last not in _OPENERS


def join_texts(texts: Sequence[str]) -> str:
    """Join pieces of text: with spaces between latin words, without between CJK ones."""
    out = ""
    for text in texts:
        if text:
            out = f"{out} {text}" if needs_space(out, text) else out + text
    return out


@dataclass(frozen=True, slots=True)
class Token:
    """A word (or a piece of one) with its time span."""

    text: str
    start_ms: int
    end_ms: int
    space_before: bool = True


def join_tokens(tokens: Sequence[Token]) -> str:
    parts: list[str] = []
    for index, token in enumerate(tokens):
        if index and token.space_before:
            parts.append(" ")
        parts.append(token.text)
    return "".join(parts)


@dataclass(slots=True)
class Cue:
    """One subtitle: time span, the lines to show, and whose voice (if labelled)."""

    start_ms: int
    end_ms: int
    lines: list[str]
    voice: str | None = None

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


# --- who is speaking --------------------------------------------------------------------------


def voice_of(segment: Segment, transcript: Transcript) -> str | None:
    """The name to label a segment with: its speaker, else its channel when there are several."""
    if segment.speaker is not None and segment.speaker.strip():
        return " ".join(segment.speaker.split())
    if segment.channel is not None and (transcript.channels or 0) > 1:
        # Channels are 0-based in the model (0 = left); people count from 1.
        return f"Channel {segment.channel + 1}"
    return None


def distinct_voices(transcript: Transcript) -> set[str]:
    return {voice for segment in transcript.segments if (voice := voice_of(segment, transcript))}


# --- tokens -----------------------------------------------------------------------------------


def _is_punctuation(text: str) -> bool:
    return all(unicodedata.category(char).startswith("P") or char.isspace() for char in text)


def tokens_from_text(text: str, start_ms: int, end_ms: int) -> list[Token]:
    """Tokens of a text without word times: time spread over the tokens by character count."""
    pieces: list[tuple[str, bool]] = []
    attach_next = False
    for match in _TEXT_TOKEN.finditer(text):
        piece = match.group()
        spaced = match.start() > 0 and text[match.start() - 1].isspace()
        if pieces and not spaced and _is_punctuation(piece) and piece[0] not in _OPENERS:
            # CJK punctuation is its own match; keep it on the character it follows.
            pieces[-1] = (pieces[-1][0] + piece, pieces[-1][1])
        elif attach_next:
            pieces[-1] = (pieces[-1][0] + piece, pieces[-1][1])
        else:
            pieces.append((piece, spaced))
        attach_next = len(piece) == 1 and piece in _OPENERS and not _spaced_after(text, match.end())
    return _no_space_inside_cjk(_spread_in_time(pieces, start_ms, end_ms))


def _spaced_after(text: str, index: int) -> bool:
    return index < len(text) and text[index].isspace()


def _spread_in_time(pieces: Sequence[tuple[str, bool]], start_ms: int, end_ms: int) -> list[Token]:
    total = sum(len(text) for text, _ in pieces)
    span = end_ms - start_ms
    tokens: list[Token] = []
    done = 0
    for text, spaced in pieces:
        begin = start_ms + span * done // total
        done += len(text)
        tokens.append(Token(text, begin, start_ms + span * done // total, spaced))
    return tokens


def tokens_for_segment(segment: Segment) -> list[Token]:
    """The segment's tokens: its words when it has them, else its text spread over its time."""
    words = [word for word in segment.words if word.text.strip()]
    if not words:
        return tokens_from_text(segment.text, segment.start_ms, segment.end_ms)
    aligned = _words_in_text(segment)
    if aligned is not None:
        return _no_space_inside_cjk(aligned)
    has_spacing = any(word.text != word.text.strip() for word in words)
    tokens: list[Token] = []
    for index, word in enumerate(words):
        text = word.text.strip()
        if index == 0:
            spaced = True
        elif has_spacing:
            # Providers that keep spaces (Whisper " word", DashScope "word ") say where they go.
            spaced = word.text[0].isspace() or words[index - 1].text[-1].isspace()
        else:
            spaced = needs_space(tokens[-1].text, text)
        tokens.append(Token(text, word.start_ms, max(word.end_ms, word.start_ms), spaced))
    return _no_space_inside_cjk(tokens)


def _words_in_text(segment: Segment) -> list[Token] | None:
    """Word times over the segment's own text, so punctuation the words lack is kept.

    Providers often punctuate the segment text but not the words (SIS word_info).  When
    every word is found in order in the text and only punctuation and spaces lie between
    them, each token is the stretch of text from its word to the next one.  Otherwise the
    words and the text disagree (digit normalisation, say) and ``None`` is returned.
    """
    text = segment.text
    words = [word for word in segment.words if word.text.strip()]
    positions: list[int] = []
    cursor = 0
    for word in words:
        found = text.find(word.text.strip(), cursor)
        if found < 0 or not _is_punctuation(text[cursor:found]):
            return None
        positions.append(found)
        cursor = found + len(word.text.strip())
    if not _is_punctuation(text[cursor:]):
        return None
    tokens: list[Token] = []
    for index, word in enumerate(words):
        begin = 0 if index == 0 else positions[index]
        finish = positions[index + 1] if index + 1 < len(words) else len(text)
        piece = text[begin:finish].strip()
        spaced = index == 0 or text[positions[index] - 1 : positions[index]].isspace()
        tokens.append(Token(piece, word.start_ms, max(word.end_ms, word.start_ms), spaced))
    return tokens


def _no_space_inside_cjk(tokens: list[Token]) -> list[Token]:
    """Drop spaces between two CJK tokens: providers that join words with spaces add them."""
    return [
        replace(token, space_before=False)
        if index
        and token.space_before
        and is_spaceless(tokens[index - 1].text[-1])
        and is_spaceless(token.text[0])
        else token
        for index, token in enumerate(tokens)
    ]


def tidy_spacing(text: str) -> str:
    """Text with runs of whitespace collapsed and the spaces between CJK characters removed."""
    collapsed = " ".join(text.split())
    return _CJK_GAP.sub("", collapsed)


def split_long_token(token: Token, max_width: int, max_chars: int) -> list[Token]:
    """Cut a token wider than a line (a URL, an unsegmented CJK sentence) into pieces that fit."""
    if display_width(token.text) <= max_width and len(token.text) <= max_chars:
        return [token]
    pieces: list[str] = []
    current, width = "", 0
    for char in token.text:
        char_width = display_width(char)
        if current and (width + char_width > max_width or len(current) + 1 > max_chars):
            pieces.append(current)
            current, width = "", 0
        current, width = current + char, width + char_width
    pieces.append(current)
    spread = _spread_in_time([(piece, False) for piece in pieces], token.start_ms, token.end_ms)
    return [replace(spread[0], space_before=token.space_before), *spread[1:]]


def _sentences(tokens: Sequence[Token]) -> Iterator[list[Token]]:
    sentence: list[Token] = []
    for token in tokens:
        sentence.append(token)
        last = token.text.rstrip(_CLOSERS)[-1:]
        if last and last in _SENTENCE_ENDS:
            yield sentence
            sentence = []
    if sentence:
        yield sentence


# --- layout -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Budget:
    """Room in one cue once the speaker label (if any) has taken its share of the first line."""

    voice: str | None
    first_line: int
    line: int
    chars: int
    max_ms: int

    @classmethod
    def for_voice(cls, voice: str | None, options: RenderOptions) -> _Budget:
        line = min(LINE_COLUMNS, options.max_cue_chars)
        if voice is not None:
            # "[name] " must leave room for text; very long names are shortened.
            room = max(1, line // 2 - 3)
            if display_width(voice) > room:
                voice = _truncate(voice, room)
        label = display_width(f"[{voice}] ") if voice is not None else 0
        label_chars = len(f"[{voice}] ") if voice is not None else 0
        return cls(voice, line - label, line, options.max_cue_chars - label_chars, options.max_cue_ms)


def _truncate(text: str, width: int) -> str:
    out = ""
    for char in text:
        if display_width(out + char + "…") > width:
            break
        out += char
    return out.rstrip() + "…"


class _Run:
    """A sentence of tokens with prefix sums, so any slice's width is found in O(1)."""

    def __init__(self, tokens: Sequence[Token]) -> None:
        self.tokens = list(tokens)
        self._width = [0]
        self._chars = [0]
        self._spaces = [0]
        for token in self.tokens:
            self._width.append(self._width[-1] + display_width(token.text))
            self._chars.append(self._chars[-1] + len(token.text))
            self._spaces.append(self._spaces[-1] + int(token.space_before))

    def __len__(self) -> int:
        return len(self.tokens)

    def _gaps(self, i: int, j: int) -> int:
        return self._spaces[j] - self._spaces[i + 1] if j > i + 1 else 0

    def width(self, i: int, j: int) -> int:
        return self._width[j] - self._width[i] + self._gaps(i, j)

    def chars(self, i: int, j: int) -> int:
        return self._chars[j] - self._chars[i] + self._gaps(i, j)

    def text(self, i: int, j: int) -> str:
        return join_tokens(self.tokens[i:j])

    def line_breaks(self, i: int, j: int, budget: _Budget, max_lines: int) -> list[int] | None:
        """Where tokens[i:j] breaks into lines (line starts), or None if it needs more lines."""
        if self.width(i, j) <= budget.first_line:
            return [i]
        if max_lines < 2:
            return None
        label = budget.line - budget.first_line
        best_score: tuple[int, int, int] | None = None
        best_break = i
        for k in range(i + 1, j):
            top, bottom = self.width(i, k), self.width(k, j)
            if top > budget.first_line or bottom > budget.line:
                continue
            # Balanced lines read best; a break after punctuation wins a tie.
            not_after_punctuation = int(not _is_punctuation(self.tokens[k - 1].text[-1]))
            score = (max(top + label, bottom), not_after_punctuation, top)
            if best_score is None or score < best_score:
                best_score, best_break = score, k
        return None if best_score is None else [i, best_break]

    def span(self, i: int, j: int) -> tuple[int, int]:
        window = self.tokens[i:j]
        return min(t.start_ms for t in window), max(t.end_ms for t in window)


_Fits = Callable[[int, int, int], bool]
"""fits(i, j, duration_ms): may tokens[i:j] lasting duration_ms form one cue?"""


def _pack(run: _Run, fits: _Fits, cap: float) -> list[tuple[int, int]]:
    """Greedy packing: each piece takes tokens while they fit and stay within ``cap`` columns."""
    pieces: list[tuple[int, int]] = []
    i = 0
    while i < len(run):
        j = i + 1
        start, end = run.tokens[i].start_ms, run.tokens[i].end_ms
        while j < len(run):
            start, end = min(start, run.tokens[j].start_ms), max(end, run.tokens[j].end_ms)
            if run.width(i, j + 1) > cap or not fits(i, j + 1, end - start):
                break
            j += 1
        pieces.append((i, j))
        i = j
    return pieces


def _balanced_pieces(run: _Run, fits: _Fits, at_most: int | None = None) -> list[tuple[int, int]]:
    """The fewest pieces that fit (or ``at_most`` pieces), with widths as even as possible.

    Greedy packing alone leaves a short orphan at the end of a sentence; searching for
    the smallest width cap that needs no more pieces spreads the words evenly instead.
    """
    fewest = _pack(run, fits, math.inf)
    target = len(fewest) if at_most is None else max(at_most, len(fewest))
    low = max(display_width(token.text) for token in run.tokens)
    high = run.width(0, len(run))
    best = fewest
    while low <= high:
        cap = (low + high) // 2
        pieces = _pack(run, fits, cap)
        if len(pieces) <= target:
            best, high = pieces, cap - 1
        else:
            low = cap + 1
    return best


# --- monolingual cues -------------------------------------------------------------------------


def build_cues(transcript: Transcript, options: RenderOptions) -> list[Cue]:
    """Cues for the whole transcript: per segment, split at sentence ends, then at the limits."""
    labelled = options.speaker_labels and bool(distinct_voices(transcript))
    cues: list[Cue] = []
    for segment in transcript.segments:
        budget = _Budget.for_voice(voice_of(segment, transcript) if labelled else None, options)
        tokens = [
            piece
            for token in tokens_for_segment(segment)
            for piece in split_long_token(token, budget.first_line, budget.chars)
        ]
        for sentence in _sentences(tokens):
            cues.extend(_sentence_cues(_Run(sentence), budget))
    return settle_timing(cues, options.max_cue_ms)


def _sentence_cues(run: _Run, budget: _Budget) -> list[Cue]:
    def fits(i: int, j: int, duration_ms: int) -> bool:
        return (
            run.chars(i, j) <= budget.chars
            and (j - i == 1 or duration_ms <= budget.max_ms)
            and run.line_breaks(i, j, budget, MAX_LINES) is not None
        )

    cues: list[Cue] = []
    for i, j in _balanced_pieces(run, fits):
        starts = run.line_breaks(i, j, budget, MAX_LINES) or [i]
        bounds = [*starts, j]
        lines = [run.text(a, b) for a, b in pairwise(bounds)]
        start, end = run.span(i, j)
        cues.append(Cue(start, end, lines, budget.voice))
    return cues


# --- bilingual cues ---------------------------------------------------------------------------


def build_bilingual_cues(
    transcript: Transcript, translation: Translation, options: RenderOptions
) -> list[Cue]:
    """Cues of one original line over one translated line, the two matched by time overlap.

    Every original token goes to the translated segment it overlaps most; consecutive
    tokens of one speaker and one translated segment form a group, and each group is
    cut into as many cues as it takes for both its original and its translated text
    to fit on one line each.
    """
    labelled = options.speaker_labels and bool(distinct_voices(transcript))
    targets = sorted(translation.segments, key=lambda s: (s.start_ms, s.end_ms))
    groups: list[tuple[int | None, _Budget, list[Token]]] = []
    for segment in transcript.segments:
        budget = _Budget.for_voice(voice_of(segment, transcript) if labelled else None, options)
        half_chars = max(1, budget.chars // 2)
        for token in tokens_for_segment(segment):
            for piece in split_long_token(token, budget.first_line, half_chars):
                target = _best_overlap(piece, targets)
                if groups and groups[-1][0] == target and groups[-1][1] == budget:
                    groups[-1][2].append(piece)
                else:
                    groups.append((target, budget, [piece]))

    shares = _share_translations(groups, targets)
    cues: list[Cue] = []
    for (_, budget, tokens), translated in zip(groups, shares, strict=True):
        sentences = list(_sentences(tokens))
        parts = list(_sentences(translated))
        if len(parts) != len(sentences):
            parts = _proportional_split(translated, [display_width(join_tokens(s)) for s in sentences])
        for sentence, part in zip(sentences, parts, strict=True):
            cues.extend(_bilingual_group_cues(sentence, part, budget))
    matched = {target for target, _, _ in groups}
    no_voice = _Budget.for_voice(None, options)
    for index, target_segment in enumerate(targets):
        if index not in matched and target_segment.text.strip():
            # A translation with no original under it still deserves to be seen.
            translated = tokens_from_text(target_segment.text, target_segment.start_ms, target_segment.end_ms)
            cues.extend(
                _spread_cues([], translated, target_segment.start_ms, target_segment.end_ms, no_voice)
            )
    return settle_timing(cues, options.max_cue_ms)


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


def _share_translations(
    groups: Sequence[tuple[int | None, _Budget, list[Token]]], targets: Sequence[TranslatedSegment]
) -> list[list[Token]]:
    """Each group's part of its translated segment (split by original width if several share it)."""
    by_target: dict[int, list[int]] = {}
    for index, (target, _, _) in enumerate(groups):
        if target is not None:
            by_target.setdefault(target, []).append(index)
    shares: list[list[Token]] = [[] for _ in groups]
    for target, members in by_target.items():
        translated = tokens_from_text(targets[target].text, targets[target].start_ms, targets[target].end_ms)
        weights = [display_width(join_tokens(groups[member][2])) for member in members]
        for member, part in zip(members, _proportional_split(translated, weights), strict=True):
            shares[member] = part
    return shares


def _proportional_split(tokens: Sequence[Token], weights: Sequence[int]) -> list[list[Token]]:
    """Cut tokens into len(weights) consecutive parts whose widths follow the weights."""
    run = _Run(tokens)
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


def _bilingual_group_cues(tokens: list[Token], translated: list[Token], budget: _Budget) -> list[Cue]:
    translated = [
        piece
        for token in translated
        for piece in split_long_token(token, budget.line, max(1, budget.chars // 2))
    ]
    run = _Run(tokens)

    def fits(i: int, j: int, duration_ms: int) -> bool:
        return (
            run.chars(i, j) <= budget.chars
            and (j - i == 1 or duration_ms <= budget.max_ms)
            and run.line_breaks(i, j, budget, 1) is not None
        )

    translated_width = _Run(translated).width(0, len(translated)) if translated else 0
    # As many cues as the original needs, and at least one line per line of translation.
    wanted = max(len(_pack(run, fits, math.inf)), math.ceil(translated_width / budget.line))
    tried = 0
    while wanted <= len(run):
        pieces = _balanced_pieces(run, fits, wanted)
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
        else:
            cues = []
            for (i, j), part in zip(pieces, parts, strict=True):
                start, end = run.span(i, j)
                lines = [run.text(i, j), join_tokens(part)] if part else [run.text(i, j)]
                cues.append(Cue(start, end, lines, budget.voice))
            return cues
    # The original cannot be cut finer: the translation is far longer than it.
    start, end = run.span(0, len(run))
    return _spread_cues(tokens, translated, start, end, budget)


def _part_fits(run: _Run, i: int, j: int, part: Sequence[Token], budget: _Budget) -> bool:
    translated = _Run(part)
    return (
        translated.width(0, len(part)) <= budget.line
        and run.chars(i, j) + translated.chars(0, len(part)) <= budget.chars
    )


def _spread_cues(
    tokens: Sequence[Token], translated: Sequence[Token], start_ms: int, end_ms: int, budget: _Budget
) -> list[Cue]:
    """Last resort: one original token and one translated line per cue, spread evenly in time."""
    half_chars = max(1, budget.chars // 2)
    line_run = _Run(
        [piece for token in translated for piece in split_long_token(token, budget.line, half_chars)]
    )

    def fits_line(i: int, j: int, _duration_ms: int) -> bool:
        return line_run.width(i, j) <= budget.line and line_run.chars(i, j) <= half_chars

    lines = [line_run.text(i, j) for i, j in _pack(line_run, fits_line, math.inf)] if translated else []
    count = max(len(tokens), len(lines), math.ceil((end_ms - start_ms) / budget.max_ms), 1)
    slots: list[list[str]] = [["", ""] for _ in range(count)]
    for index, token in enumerate(tokens):
        slots[index * count // len(tokens)][0] = token.text
    for index, line in enumerate(lines):
        slots[index * count // len(lines)][1] = line
    cues = []
    for index, (original, translated_line) in enumerate(slots):
        if not original and not translated_line:
            continue
        begin = start_ms + (end_ms - start_ms) * index // count
        finish = start_ms + (end_ms - start_ms) * (index + 1) // count
        voice = budget.voice if original else None
        cues.append(Cue(begin, finish, [text for text in (original, translated_line) if text], voice))
    return cues


# --- timing -----------------------------------------------------------------------------------


def settle_timing(cues: Sequence[Cue], max_cue_ms: int) -> list[Cue]:
    """Sort cues and make them well-formed: strictly later starts, no overlap, sane durations.

    An overlap is resolved by ending the earlier cue where the next one starts; a cue
    shorter than MIN_CUE_MS is stretched into the silence after it when there is some.
    """
    ordered = sorted(cues, key=lambda cue: cue.start_ms)  # stable: equal starts keep text order
    settled: list[Cue] = []
    for cue in ordered:
        start = cue.start_ms
        if settled and start <= settled[-1].start_ms:
            start = settled[-1].start_ms + 1
        settled.append(Cue(start, max(cue.end_ms, start), list(cue.lines), cue.voice))
    for index, cue in enumerate(settled):
        end = min(max(cue.end_ms, cue.start_ms + MIN_CUE_MS), cue.start_ms + max_cue_ms)
        if index + 1 < len(settled):
            end = min(end, settled[index + 1].start_ms)
        cue.end_ms = max(end, cue.start_ms + 1)
    return settled

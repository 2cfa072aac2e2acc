"""Text tokens: words with times, and the rules for writing them without spaces (CJK).

A token comes from a segment's words when the provider gave them, otherwise from the
segment text with the time spread in proportion to characters.  Chinese and Japanese have
no spaces between words, so each token records whether a space preceded it, and widths are
measured in display columns (a CJK character takes two).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from functools import cache
from typing import NamedTuple

from bucketscribe.domain.transcript import Segment, Word

_SPACELESS_RANGES = (
    "\u3000-\u303f\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
    "\U00020000-\U0003134f"
)
_FIRST_SPACELESS = "\u3000"  # no character below this is in the ranges above
_SPACELESS = f"[{_SPACELESS_RANGES}]"
_TEXT_TOKEN = f"[{_SPACELESS_RANGES}]|[^\\s{_SPACELESS_RANGES}]+"
_CJK_GAP = f"(?<={_SPACELESS}) (?={_SPACELESS})"


@cache
def _compiled(pattern: str) -> re.Pattern[str]:
    """Compiled on first use: these character classes take ~6 ms to compile, which a function
    that never renders (a submit worker) should not pay at its cold start."""
    return re.compile(pattern)


OPENERS = "([{«“‘「『（《〈【〔〖［｛¿¡"
CLOSERS = ")]}»”’」』）》〉】〕〗］｝\"'"
_NO_SPACE_BEFORE = ",.!?;:%…" + CLOSERS + "、。，！？；：．"
_SENTENCE_ENDS = ".!?…。！？．"
# Punctuation and spaces common enough to be recognised without a Unicode look-up.
_PLAIN_PUNCTUATION = " ,.!?;:'\"()[]{}-…。，、！？；：「」『』（）《》"


class Token(NamedTuple):
    """A word (or a piece of one) with its time span (a tuple: there are one per word)."""

    text: str
    start_ms: int
    end_ms: int
    space_before: bool = True


def is_spaceless(char: str) -> bool:
    """True for characters of scripts written without spaces between words (CJK, kana)."""
    return char >= _FIRST_SPACELESS and _compiled(_SPACELESS).match(char) is not None


def display_width(text: str) -> int:
    """Columns the text takes on screen: wide (CJK) characters count two, combining marks none."""
    if text.isascii():
        return len(text)
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def is_punctuation(text: str) -> bool:
    """True when the text is only punctuation and spaces (an empty text counts as such)."""
    if not text.strip(_PLAIN_PUNCTUATION):
        return True
    return all(unicodedata.category(char).startswith("P") or char.isspace() for char in text)


def needs_space(before: str, after: str) -> bool:
    """Whether a space belongs between two pieces of text that were never written together."""
    if not before or not after:
        return False
    last, first = before[-1], after[0]
    if is_spaceless(last) or is_spaceless(first):
        return False
    return first not in _NO_SPACE_BEFORE and last not in OPENERS


def join_texts(texts: Sequence[str]) -> str:
    """Join pieces of text: with spaces between latin words, without between CJK ones."""
    out = ""
    for text in texts:
        if text:
            out = f"{out} {text}" if needs_space(out, text) else out + text
    return out


def join_tokens(tokens: Sequence[Token]) -> str:
    """The tokens as they are written: each preceded by a space where it had one."""
    if not tokens:
        return ""
    parts = [tokens[0].text]
    for token in tokens[1:]:
        parts.append(f" {token.text}" if token.space_before else token.text)
    return "".join(parts)


def tidy_spacing(text: str) -> str:
    """Text with runs of whitespace collapsed and the spaces between CJK characters removed."""
    collapsed = " ".join(text.split())
    return _compiled(_CJK_GAP).sub("", collapsed) if not collapsed.isascii() else collapsed


# --- a segment's tokens -----------------------------------------------------------------------


def tokens_for_segment(segment: Segment) -> list[Token]:
    """The segment's tokens: its words when it has them, else its text spread over its time."""
    words = [word for word in segment.words if word.text.strip()]
    if not words:
        return tokens_from_text(segment.text, segment.start_ms, segment.end_ms)
    aligned = _words_in_text(segment.text, words)
    if aligned is not None:
        return _no_space_inside_cjk(aligned)
    has_spacing = any(word.text != word.text.strip() for word in words)
    tokens: list[Token] = []
    for index, word in enumerate(words):
        text = word.text.strip()
        if index == 0:
            spaced = True
        elif has_spacing:
            # Providers that keep spaces (" word" or "word ") say where they go.
            spaced = word.text[0].isspace() or words[index - 1].text[-1].isspace()
        else:
            spaced = needs_space(tokens[-1].text, text)
        tokens.append(Token(text, word.start_ms, max(word.end_ms, word.start_ms), spaced))
    return _no_space_inside_cjk(tokens)


def tokens_from_text(text: str, start_ms: int, end_ms: int) -> list[Token]:
    """Tokens of a text without word times: time spread over the tokens by character count."""
    pieces: list[tuple[str, bool]] = []
    attach_next = False
    for match in _compiled(_TEXT_TOKEN).finditer(text):
        piece = match.group()
        spaced = match.start() > 0 and text[match.start() - 1].isspace()
        if pieces and not spaced and is_punctuation(piece) and piece[0] not in OPENERS:
            # CJK punctuation is its own match; keep it on the character it follows.
            pieces[-1] = (pieces[-1][0] + piece, pieces[-1][1])
        elif attach_next:
            pieces[-1] = (pieces[-1][0] + piece, pieces[-1][1])
        else:
            pieces.append((piece, spaced))
        attach_next = len(piece) == 1 and piece in OPENERS and not _spaced_after(text, match.end())
    return _no_space_inside_cjk(spread_in_time(pieces, start_ms, end_ms))


def _spaced_after(text: str, index: int) -> bool:
    return index < len(text) and text[index].isspace()


def spread_in_time(pieces: Sequence[tuple[str, bool]], start_ms: int, end_ms: int) -> list[Token]:
    """Tokens for (text, space before) pieces sharing a time span in proportion to their length."""
    total = sum(len(text) for text, _ in pieces)
    span = end_ms - start_ms
    tokens: list[Token] = []
    done = 0
    for text, spaced in pieces:
        begin = start_ms + span * done // total
        done += len(text)
        tokens.append(Token(text, begin, start_ms + span * done // total, spaced))
    return tokens


def _words_in_text(text: str, words: Sequence[Word]) -> list[Token] | None:
    """Word times over the segment's own text, so punctuation the words lack is kept.

    Providers often punctuate the segment text but not the words.  When
    every word is found in order in the text and only punctuation and spaces lie between
    them, each token is the stretch of text from its word to the next one.  Otherwise the
    words and the text disagree (digit normalisation, say) and ``None`` is returned.
    """
    positions: list[int] = []
    cursor = 0
    for word in words:
        needle = word.text.strip()
        found = text.find(needle, cursor)
        if found < 0 or (
            found > cursor and text[cursor:found] != " " and not is_punctuation(text[cursor:found])
        ):
            return None
        positions.append(found)
        cursor = found + len(needle)
    if not is_punctuation(text[cursor:]):
        return None
    ends = [*positions[1:], len(text)]
    positions[0] = 0  # the first token takes any punctuation before its word
    return [
        Token(
            text[begin:finish].strip(),
            word.start_ms,
            max(word.end_ms, word.start_ms),
            index == 0 or text[begin - 1].isspace(),
        )
        for index, (word, begin, finish) in enumerate(zip(words, positions, ends, strict=True))
    ]


def _no_space_inside_cjk(tokens: list[Token]) -> list[Token]:
    """Drop spaces between two CJK tokens: providers that join words with spaces add them."""
    for index in range(1, len(tokens)):
        token = tokens[index]
        if token.space_before and is_spaceless(token.text[0]) and is_spaceless(tokens[index - 1].text[-1]):
            tokens[index] = token._replace(space_before=False)
    return tokens


# --- cutting tokens ---------------------------------------------------------------------------


def split_long_token(token: Token, max_width: int, max_chars: int) -> list[Token]:
    """Cut a token wider than a line (a URL, an unsegmented CJK sentence) into pieces that fit."""
    if len(token.text) <= max_chars and display_width(token.text) <= max_width:
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
    spread = spread_in_time([(piece, False) for piece in pieces], token.start_ms, token.end_ms)
    return [spread[0]._replace(space_before=token.space_before), *spread[1:]]


def sentences(tokens: Sequence[Token]) -> Iterator[list[Token]]:
    """The tokens cut after each token that ends a sentence (closing quotes aside)."""
    sentence: list[Token] = []
    for token in tokens:
        sentence.append(token)
        last = token.text.rstrip(CLOSERS)[-1:]
        if last and last in _SENTENCE_ENDS:
            yield sentence
            sentence = []
    if sentence:
        yield sentence

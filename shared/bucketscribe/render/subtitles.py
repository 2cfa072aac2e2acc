"""SubRip (SRT) and WebVTT text for a list of cues (see ``cues`` for how they are cut and timed).

Both formats allow cues that overlap in time.  A cue shown beside another (``top_line``)
gets a WebVTT ``line:`` setting so the two never cover each other; SubRip has no standard
placement, and players stack overlapping SRT cues themselves.
"""

from __future__ import annotations

from collections.abc import Sequence

from bucketscribe.render.layout import srt_prefix
from bucketscribe.render.timing import Cue


def timestamp(ms: int, fraction_separator: str) -> str:
    """``HH:MM:SS,mmm`` (SRT) or ``HH:MM:SS.mmm`` (WebVTT); hours grow past two digits if needed."""
    seconds, millis = divmod(max(ms, 0), 1000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}{fraction_separator}{millis:03d}"


def render_srt(cues: Sequence[Cue]) -> str:
    """1-based numbered blocks, each ended by a blank line; no cues gives an empty file."""
    blocks = []
    for number, cue in enumerate(cues, start=1):
        lines = []
        for turn in cue.turns:
            # SRT has no escaping; an arrow in the text could be read as a timing line.
            turn_lines = [line.replace("-->", "->") for line in turn.lines]
            if turn_lines:
                turn_lines[0] = srt_prefix(turn.label, cue.is_dialogue) + turn_lines[0]
            lines.extend(turn_lines)
        timing = f"{timestamp(cue.start_ms, ',')} --> {timestamp(cue.end_ms, ',')}"
        blocks.append("\n".join([str(number), timing, *lines]) + "\n")
    return "\n".join(blocks)


def render_vtt(cues: Sequence[Cue]) -> str:
    """A WebVTT file; speakers become voice spans (``<v Agent>``); no cues gives the header alone."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        dash = "-" if cue.is_dialogue else ""
        text = "\n".join(
            _voiced(turn.label, dash + "\n".join(escape_vtt(line) for line in turn.lines))
            for turn in cue.turns
        )
        timing = f"{timestamp(cue.start_ms, '.')} --> {timestamp(cue.end_ms, '.')}"
        if cue.top_line is not None:
            timing += f" line:{cue.top_line}"
        blocks.append(f"{timing}\n{text}\n")
    return "\n".join(blocks)


def _voiced(label: str | None, text: str) -> str:
    return f"<v {escape_vtt(label)}>{text}</v>" if label is not None else text


def escape_vtt(text: str) -> str:
    """Escape what WebVTT cue text reserves (this also keeps "-->" out of cue text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

"""SubRip (SRT) and WebVTT text for a list of cues (see ``cues`` for how they are cut)."""

from __future__ import annotations

from collections.abc import Sequence

from bucketscribe.render.cues import Cue


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
        lines = [_srt_line(line) for line in cue.lines]
        if cue.voice is not None and lines:
            lines[0] = f"[{cue.voice}] {lines[0]}"
        timing = f"{timestamp(cue.start_ms, ',')} --> {timestamp(cue.end_ms, ',')}"
        blocks.append("\n".join([str(number), timing, *lines]) + "\n")
    return "\n".join(blocks)


def _srt_line(line: str) -> str:
    # SRT has no escaping; an arrow in the text could be read as a timing line.
    return line.replace("-->", "->")


def render_vtt(cues: Sequence[Cue]) -> str:
    """A WebVTT file; speakers become voice spans (``<v Agent>``); no cues gives the header alone."""
    blocks = ["WEBVTT\n"]
    for cue in cues:
        text = "\n".join(escape_vtt(line) for line in cue.lines)
        if cue.voice is not None:
            text = f"<v {escape_vtt(cue.voice)}>{text}</v>"
        timing = f"{timestamp(cue.start_ms, '.')} --> {timestamp(cue.end_ms, '.')}"
        blocks.append(f"{timing}\n{text}\n")
    return "\n".join(blocks)


def escape_vtt(text: str) -> str:
    """Escape what WebVTT cue text reserves (this also keeps "-->" out of cue text)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

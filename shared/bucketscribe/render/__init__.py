"""Render a canonical Transcript as the files users read: json, txt, srt and vtt.

``render(transcript, "srt")`` gives one file's text.  With ``translation="en"``
(or ``render_bilingual``) subtitles carry the original line over the translated
one for each cue.
"""

from __future__ import annotations

from typing import Literal, get_args

from bucketscribe.domain.profile import OutputFormat, RenderOptions
from bucketscribe.domain.transcript import Transcript, Translation
from bucketscribe.render.bilingual import build_bilingual_cues
from bucketscribe.render.cues import build_cues
from bucketscribe.render.gc_pause import gc_paused
from bucketscribe.render.subtitles import render_srt, render_vtt
from bucketscribe.render.text import render_text

__all__ = [
    "CONTENT_TYPES",
    "FORMATS",
    "SUFFIXES",
    "OutputFormat",
    "SubtitleFormat",
    "bilingual_suffix",
    "find_translation",
    "render",
    "render_bilingual",
]

SubtitleFormat = Literal["srt", "vtt"]

FORMATS: tuple[OutputFormat, ...] = get_args(OutputFormat)
SUFFIXES: dict[OutputFormat, str] = {fmt: f".{fmt}" for fmt in FORMATS}
CONTENT_TYPES: dict[OutputFormat, str] = {
    "json": "application/json",
    "txt": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


def render(
    transcript: Transcript,
    fmt: OutputFormat,
    options: RenderOptions | None = None,
    *,
    translation: str | None = None,
) -> str:
    """The text of one output file.  ``translation`` (a language) makes bilingual subtitles."""
    options = options or RenderOptions()
    if translation is not None:
        if fmt not in ("srt", "vtt"):
            raise ValueError(f"bilingual output exists only for srt and vtt, not {fmt!r}")
        return render_bilingual(transcript, translation, fmt, options)
    if fmt == "json":
        return transcript.model_dump_json(indent=2)
    if fmt == "txt":
        return render_text(transcript, options)
    if fmt in ("srt", "vtt"):
        with gc_paused():  # one object per word and per cue, none of them in a cycle
            cues = build_cues(transcript, options)
        return render_srt(cues) if fmt == "srt" else render_vtt(cues)
    raise ValueError(f"unknown output format {fmt!r}; expected one of {', '.join(FORMATS)}")


def render_bilingual(
    transcript: Transcript,
    language: str,
    fmt: SubtitleFormat,
    options: RenderOptions | None = None,
) -> str:
    """Subtitles with the original line and its ``language`` translation in every cue."""
    translation = find_translation(transcript, language)
    with gc_paused():
        cues = build_bilingual_cues(transcript, translation, options or RenderOptions())
    if fmt == "srt":
        return render_srt(cues)
    if fmt == "vtt":
        return render_vtt(cues)
    raise ValueError(f"bilingual output exists only for srt and vtt, not {fmt!r}")


def find_translation(transcript: Transcript, language: str) -> Translation:
    """The transcript's translation into ``language`` (exact tag first, then ignoring case)."""
    for translation in transcript.translations:
        if translation.language == language:
            return translation
    for translation in transcript.translations:
        if translation.language.casefold() == language.casefold():
            return translation
    available = ", ".join(t.language for t in transcript.translations) or "none"
    raise LookupError(f"no {language!r} translation in this transcript (available: {available})")


def bilingual_suffix(language: str, fmt: SubtitleFormat) -> str:
    """File suffix for bilingual subtitles, e.g. ``.en.srt`` next to the plain ``.srt``."""
    return f".{language}.{fmt}"

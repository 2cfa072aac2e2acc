"""Plain text: one paragraph per turn of speech, labelled when there are voices to tell apart."""

from __future__ import annotations

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.domain.transcript import Transcript
from bucketscribe.render.speakers import shows_labels, voice_of
from bucketscribe.render.tokens import join_texts, tidy_spacing


def render_text(transcript: Transcript, options: RenderOptions) -> str:
    """Consecutive segments of one speaker form a paragraph; paragraphs are separated by a blank line.

    Labels ("Agent: ", "Channel 1: ") appear when there are two or more voices and
    ``speaker_labels`` is on; with labels off, turns still start new paragraphs.
    """
    labelled = shows_labels(transcript, options)
    paragraphs: list[tuple[str | None, list[str]]] = []
    for segment in transcript.segments:
        text = tidy_spacing(segment.text)
        if not text:
            continue
        voice = voice_of(segment, transcript)
        if paragraphs and paragraphs[-1][0] == voice:
            paragraphs[-1][1].append(text)
        else:
            paragraphs.append((voice, [text]))
    if not paragraphs:
        return ""
    blocks = [
        f"{voice}: {join_texts(texts)}" if labelled and voice else join_texts(texts)
        for voice, texts in paragraphs
    ]
    return "\n\n".join(blocks) + "\n"

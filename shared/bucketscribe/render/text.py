"""Plain text: one paragraph per turn of speech, labelled when the transcript is diarised."""

from __future__ import annotations

from bucketscribe.model import Transcript
from bucketscribe.profiles import RenderOptions
from bucketscribe.render.cues import distinct_voices, join_texts, tidy_spacing, voice_of


def render_text(transcript: Transcript, options: RenderOptions) -> str:
    """Consecutive segments of one speaker form a paragraph; paragraphs are separated by a blank line.

    Labels ("Agent: ", "Channel 1: ") appear when there is more than one voice, or one
    voice and ``speaker_labels`` is on: with two voices a text without names would
    lose who said what, so they are kept even when labels are switched off.
    """
    voices = distinct_voices(transcript)
    labelled = len(voices) > 1 or (bool(voices) and options.speaker_labels)
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

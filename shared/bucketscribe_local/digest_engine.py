"""An instant speech engine whose words come from the audio's bytes.

Every recording gets its own few words, at no decoding cost, so a soak or a test can tell
whether the transcript written beside an upload really is that upload's (a forged or crossed
result would carry another recording's words). ``digest_text`` gives the expected words.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from bucketscribe_local.speech import Recognition, RecognizedSegment, RecognizedWord

_WORDS = [
    "amber",
    "basil",
    "cedar",
    "delta",
    "ember",
    "falcon",
    "garnet",
    "harbor",
    "indigo",
    "juniper",
    "kestrel",
    "lantern",
    "meadow",
    "nectar",
    "orchid",
    "pebble",
    "quartz",
    "raven",
    "saffron",
    "thistle",
    "umber",
    "velvet",
    "willow",
    "xenon",
    "yarrow",
    "zephyr",
    "anchor",
    "beacon",
    "canyon",
    "dune",
    "estuary",
    "fjord",
    "glacier",
    "heron",
    "island",
    "jetty",
    "kelp",
    "lagoon",
    "marsh",
    "north",
]
WORDS_PER_RECORDING = 6
STEP_MS = 300


def digest_text(audio: bytes) -> str:
    digest = hashlib.sha256(audio).digest()
    return " ".join(_WORDS[byte % len(_WORDS)] for byte in digest[:WORDS_PER_RECORDING])


class DigestSpeechEngine:
    name = "digest (instant, words from the audio's bytes)"

    def recognize(self, audio: bytes | Path, **_: Any) -> Recognition:
        data = audio.read_bytes() if isinstance(audio, Path) else audio
        words = digest_text(data).split()
        return Recognition(
            language="en",
            duration_ms=STEP_MS * len(words),
            segments=[
                RecognizedSegment(
                    start_ms=0,
                    end_ms=STEP_MS * len(words),
                    text=" ".join(words),
                    words=[
                        RecognizedWord(start_ms=i * STEP_MS, end_ms=(i + 1) * STEP_MS, text=word)
                        for i, word in enumerate(words)
                    ],
                )
            ],
        )

"""Recordings spoken from scripts by espeak-ng, for tests and benchmarks that assert on words.

A script is a list of utterances (text, voice, speaking rate, pause after); :func:`speak`
turns it into one 16 kHz mono 16-bit WAV and knows what was said, so word counts and word
error rates can be checked. Each utterance is resampled by PyAV (no dither, so the same tools
give the same bytes), trimmed of espeak's own leading and trailing silence, peak-normalised,
then followed by exactly its pause. espeak-ng is the one outside tool
(``apt-get install -y espeak-ng``); :func:`can_speak` says whether it is there.

The scripts below are the ones the engine's tests and ``bench/engine.py`` use: repetitive
audio of the kinds calls are full of (a hold message looping, a booking reference read back),
and an ordinary conversation to measure accuracy on.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from bucketscribe_local.whisper_engine import SAMPLE_RATE, decode_speech

if TYPE_CHECKING:
    import numpy as np

SILENCE = 0.005  # below 0.5 % of full scale is espeak's silence, cut at both ends of an utterance
PEAK = 10 ** (-1 / 20)  # utterances are normalised to a -1 dBFS peak


class Utterance(BaseModel):
    model_config = ConfigDict(frozen=True)

    text: str
    voice: str = "en-us"
    words_per_minute: int = Field(default=160, ge=80, le=450)
    pause_s: float = Field(default=1.0, ge=0)


class Script(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    utterances: tuple[Utterance, ...]
    # Whether the words can be scored as written: digits read out ("seven four two nine")
    # come back from Whisper as "7429", which a word error rate counts as four errors.
    scorable: bool = True

    @property
    def text(self) -> str:
        return " ".join(u.text for u in self.utterances)

    @property
    def words(self) -> int:
        return len(self.text.split())


def can_speak() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(script: Script, dest: Path) -> Path:
    """Write ``script`` spoken as a 16 kHz mono 16-bit WAV to ``dest``; returns ``dest``."""
    import numpy as np

    if not can_speak():
        raise RuntimeError("speaking a script needs espeak-ng: apt-get install -y espeak-ng")
    spoken: dict[Utterance, np.ndarray] = {}  # a repeated utterance is synthesised once
    with tempfile.TemporaryDirectory(prefix="scripted-speech-") as work:
        for utterance in script.utterances:
            if utterance not in spoken:
                spoken[utterance] = _speak_one(utterance, Path(work) / f"u{len(spoken)}.wav")
    samples = np.concatenate([spoken[u] for u in script.utterances])
    dest.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(np.round(samples * 32767).astype("<i2").tobytes())
    return dest


def _speak_one(utterance: Utterance, raw: Path) -> np.ndarray:
    """One utterance as float samples: espeak-ng, resampled, trimmed, normalised, then its pause."""
    import numpy as np

    voice = ["-v", utterance.voice, "-s", str(utterance.words_per_minute)]
    subprocess.run(["espeak-ng", *voice, "-w", str(raw), utterance.text], check=True, capture_output=True)
    samples = decode_speech(raw)
    loud = np.flatnonzero(np.abs(samples) > SILENCE)
    if len(loud) == 0:
        raise RuntimeError(f"espeak-ng said nothing for {utterance.text!r}")
    voiced = samples[loud[0] : loud[-1] + 1]
    voiced = voiced * (PEAK / np.abs(voiced).max())
    pause = np.zeros(round(utterance.pause_s * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([voiced, pause])


# ----------------------------------------------------------------------------- the scripts

_HOLD = Utterance(
    text=(
        "Thank you for calling. All of our agents are busy helping other customers. Please stay "
        "on the line and your call will be answered in the order it was received."
    )
)
_AGENT = Utterance(
    voice="en-us+f3",
    text=(
        "Hello, thank you for waiting. My name is Sarah and I will be looking after your order "
        "today. Could you tell me your account number please?"
    ),
)

# A hold message looping eight times (80 s), then an agent picks up: the recording.
HOLD_LOOP = Script(name="hold_loop", utterances=(_HOLD,) * 8 + (_AGENT,))

_CONFIRM = Utterance(text="Please confirm your booking reference.", pause_s=0.6)
_REFERENCE = Utterance(text="The reference is seven four two nine.", voice="en-us+m3", pause_s=0.6)

# Two sentences taking turns for two minutes: a reference read back again and again. (Two
# voices: Whisper base mishears espeak's en-us+f3 reading digits, and with one voice for both
# sentences it places a few of them seconds away from where they were said.)
READ_BACK = Script(name="read_back", utterances=(_CONFIRM, _REFERENCE) * 23, scorable=False)

# An ordinary conversation: different sentences, two voices, pauses between turns.
LIBRARY_CALL = Script(
    name="library_call",
    utterances=tuple(
        Utterance(text=text, voice="en-us" if i % 2 == 0 else "en-us+f3", words_per_minute=165, pause_s=0.9)
        for i, text in enumerate(
            (
                "Good afternoon, and thank you for calling the city library. My name is Daniel. "
                "How can I help you today?",
                "Hello Daniel. I borrowed a few books last month and I think one of them is overdue. "
                "I would like to know what I should do.",
                "Of course. I can look that up for you. Could you tell me the name on your library card?",
                "Yes, the card is under the name Margaret Collins. I usually visit the branch near the "
                "river.",
                "Thank you, Margaret. I can see three books on your account. Two of them are due next "
                "week, but the book about garden birds was due on Monday.",
                "That is the one I was worried about. My grandson has been reading it every evening and "
                "he does not want to give it back.",
                "That is lovely to hear. I can renew it for another three weeks, as long as nobody else "
                "has asked for it. Let me check the waiting list.",
                "Thank you. Will there be a fine for the days it was late?",
                "There is a small charge for each day, but because this is the first time, I can remove "
                "it from your account. The renewal is done, and the new date will appear on your receipt.",
                "That is very kind of you. While I have you on the phone, could you tell me when the "
                "reading group meets?",
                "The reading group meets on the first Thursday of every month in the upstairs room. This "
                "month they are discussing a novel about a lighthouse keeper on a small island.",
                "That sounds wonderful. I will try to come along with a friend. Is there anything we "
                "need to bring?",
                "Only yourselves and a copy of the book if you have one. We keep a few spare copies at "
                "the front desk for anyone who needs them.",
                "Perfect. Thank you so much for your help today, Daniel. Have a good afternoon.",
                "You are welcome, Margaret. Enjoy the book, and we hope to see you at the reading group. "
                "Goodbye.",
            )
        )
    ),
)

REPETITIVE_SCRIPTS = (HOLD_LOOP, READ_BACK)

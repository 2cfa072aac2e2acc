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


# ----------------------------------------------------------------------------- two-sided calls


class Turn(BaseModel):
    """One line of a call: who says it (channel 0 the agent, 1 the customer) and when it starts,
    relative to the end of the line before (negative: the two overlap)."""

    model_config = ConfigDict(frozen=True)

    channel: int = Field(ge=0, le=1)
    text: str
    after_s: float = 0.7


class CallScript(BaseModel):
    """A stereo call spoken by two espeak-ng voices, agent left and customer right."""

    model_config = ConfigDict(frozen=True)

    name: str
    turns: tuple[Turn, ...]
    voices: tuple[str, str] = ("en-us+f3", "en-us+m3")
    words_per_minute: int = 160
    speakers: tuple[str, str] = ("Agent", "Customer")

    def channel_text(self, channel: int) -> str:
        return " ".join(t.text for t in self.turns if t.channel == channel)


def speak_call(
    call: CallScript, dest: Path, *, sample_rate: int = 8_000
) -> tuple[Path, list[tuple[int, int]]]:
    """Write ``call`` as a stereo 16-bit WAV at ``sample_rate`` (8 kHz: a telephone line).

    Returns the path and each turn's (start, end) in ms, in the script's order.
    """
    import numpy as np

    if not can_speak():
        raise RuntimeError("speaking a call needs espeak-ng: apt-get install -y espeak-ng")
    with tempfile.TemporaryDirectory(prefix="scripted-call-") as work:
        lines = [
            _speak_one(
                Utterance(
                    text=turn.text,
                    voice=call.voices[turn.channel],
                    words_per_minute=call.words_per_minute,
                    pause_s=0,
                ),
                Path(work) / f"t{i}.wav",
            )
            for i, turn in enumerate(call.turns)
        ]
    spans: list[tuple[int, int]] = []
    cursor = 0
    for turn, line in zip(call.turns, lines, strict=True):
        start = max(cursor + round(turn.after_s * SAMPLE_RATE), 0)
        spans.append((start, start + len(line)))
        cursor = start + len(line)
    tracks = np.zeros((2, max(end for _, end in spans) + SAMPLE_RATE // 2), dtype=np.float32)
    for turn, line, (start, end) in zip(call.turns, lines, spans, strict=True):
        tracks[turn.channel, start:end] += line
    pcm = _resampled_stereo(tracks, sample_rate)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(dest), "wb") as out:
        out.setnchannels(2)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        out.writeframes(pcm)
    return dest, [(start * 1000 // SAMPLE_RATE, end * 1000 // SAMPLE_RATE) for start, end in spans]


def _resampled_stereo(tracks: np.ndarray, sample_rate: int) -> bytes:
    """Interleaved 16-bit PCM of two 16 kHz float tracks at ``sample_rate`` (PyAV's resampler,
    which low-passes before it decimates: the band a telephone line carries)."""
    import av
    import numpy as np

    interleaved = np.round(np.clip(tracks, -1, 1).T * 32767).astype("<i2").reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(interleaved, format="s16", layout="stereo")
    frame.sample_rate = SAMPLE_RATE
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=sample_rate)
    out = [f.to_ndarray() for f in resampler.resample(frame)] + [
        f.to_ndarray() for f in resampler.resample(None)
    ]
    return b"".join(part.astype("<i2").tobytes() for part in out)


# A billing call at 8 kHz: the customer twice starts before the agent has finished, and reads out
# an invoice number (the line the stream heard as Thai script).
BILLING_CALL = CallScript(
    name="billing_call",
    turns=(
        Turn(
            channel=0,
            text="Good afternoon, thank you for calling the billing team. My name is Laura. "
            "How can I help you today?",
            after_s=0.5,
        ),
        Turn(channel=1, text="Hi Laura, I was charged twice for the same invoice last month."),
        Turn(channel=0, text="I am sorry to hear that. Could you give me the invoice number, please?"),
        Turn(channel=1, text="The invoice number is four seven two nine."),
        Turn(
            channel=0,
            text="Thank you. I can see two payments for that invoice, both on the third of May.",
            after_s=0.9,
        ),
        Turn(channel=1, text="Yes, that is the one. Can you refund the second payment?", after_s=-0.6),
        Turn(
            channel=0,
            text="Of course. I have started the refund now, and it should reach your account "
            "within five working days.",
        ),
        Turn(channel=1, text="That is great, thank you so much for your help.", after_s=-0.8),
        Turn(channel=0, text="You are welcome. Is there anything else I can do for you today?"),
        Turn(channel=1, text="No, that is everything. Have a nice day."),
        Turn(channel=0, text="You too. Goodbye."),
    ),
)

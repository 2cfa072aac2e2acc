"""Short recordings bundled with bucketscribe, with the scripts they were spoken from.

Made with espeak-ng, sox and ffmpeg by ``scripts/make_samples.sh`` (deterministic), so the
demo and the tests have real audio in several containers without any download:

- ``hello_en.wav``: 16 kHz mono PCM; ``weather_en.ogg``: Opus; ``report_en.mp3``: MP3
- ``call_stereo.wav``: an 8 kHz mu-law call, agent on the left channel, customer on the right
- ``demo_video.mp4``: H.264 test pattern with an AAC speech track
"""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from pathlib import Path

from pydantic import BaseModel


class Sample(BaseModel):
    name: str
    path: Path
    text: str
    """What was spoken, all channels in the order spoken."""
    channel_texts: list[str] | None = None
    """What was spoken on each channel (index 0 = left) of a multi-channel recording."""


def samples_dir() -> Path:
    folder = files(__name__)
    if not isinstance(folder, Path):
        raise RuntimeError(f"the bundled samples are not plain files on disk: {folder}")
    return folder


@cache
def bundled_samples() -> tuple[Sample, ...]:
    folder = samples_dir()
    texts: dict[str, str] = json.loads((folder / "scripts.json").read_text(encoding="utf-8"))
    channels: dict[str, list[str]] = json.loads((folder / "channel_scripts.json").read_text(encoding="utf-8"))
    return tuple(
        Sample(name=name, path=folder / name, text=text, channel_texts=channels.get(name))
        for name, text in texts.items()
    )


def sample(name: str) -> Sample:
    for candidate in bundled_samples():
        if candidate.name == name:
            return candidate
    known = ", ".join(s.name for s in bundled_samples())
    raise KeyError(f"no bundled sample {name!r} (there are: {known})")

"""transcribe's engine options: --task translate asks the engine for English, and the engine's
settings as options set the BUCKETSCRIBE_WHISPER_* settings the engine reads when it loads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pytest
from bucketscribe_local.commands import _apply_engine_options
from bucketscribe_local.speech import EngineDefaults, FixedSpeechEngine, Recognition
from bucketscribe_local.whisper_engine import WhisperSettings

pytestmark = pytest.mark.unit


class Recording(FixedSpeechEngine):
    """The fixed engine, remembering what each request asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[dict[str, Any]] = []

    def recognize(self, audio: bytes | Path, **options: Any) -> Recognition:
        self.asked.append(options)
        return super().recognize(audio, **options).model_copy(update={"language": "de"})


def test_translate_asks_the_engine_for_english_and_says_the_text_is_english() -> None:
    inner = Recording()
    translating = EngineDefaults(inner, None, translate=True)
    recognition = translating.recognize(b"audio")
    assert inner.asked[-1]["translate"] is True and recognition.language == "en"
    plain = EngineDefaults(inner, "de")
    assert plain.recognize(b"audio").language == "de"
    assert inner.asked[-1] == {"language": "de", "translate": False}


def test_engine_options_become_the_engines_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DEVICE", "COMPUTE_TYPE", "BEAM_SIZE", "CPU_THREADS"):
        # Set first, so that monkeypatch puts each back as it was once the test is over.
        monkeypatch.setenv(f"BUCKETSCRIBE_WHISPER_{name}", "")
        monkeypatch.delenv(f"BUCKETSCRIBE_WHISPER_{name}")
    _apply_engine_options(argparse.Namespace(device="cpu", compute_type="int8", beam_size=5, threads=1))
    settings = WhisperSettings()
    assert (settings.device, settings.compute_type, settings.beam_size, settings.cpu_threads) == (
        "cpu",
        "int8",
        5,
        1,
    )

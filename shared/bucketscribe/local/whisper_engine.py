"""The offline speech engine: faster-whisper (CTranslate2) behind the ``SpeechEngine`` protocol.

Nothing heavy happens at import or construction: the model is found (or assembled, see
``model_store``) and loaded on the first ``recognize``. One loaded model serves every thread:
faster-whisper's ``WhisperModel.transcribe`` keeps its per-call state in locals, and
CTranslate2 queues concurrent ``generate`` calls onto its ``num_workers`` model replicas, so
only the load itself needs a lock.

Settings come from the environment (``BUCKETSCRIBE_WHISPER_*``) or are passed in:

- ``BUCKETSCRIBE_WHISPER_DEVICE``: ``auto`` (default: CUDA if CTranslate2 sees a GPU), ``cpu``, ``cuda``
- ``BUCKETSCRIBE_WHISPER_COMPUTE_TYPE``: default ``int8`` on CPU, ``float16`` on CUDA
- ``BUCKETSCRIBE_WHISPER_BEAM_SIZE`` (1: greedy, fastest on 2 cores), ``..._VAD_FILTER`` (off:
  clips are short), ``..._CPU_THREADS`` (0: CTranslate2's default), ``..._NUM_WORKERS`` (1)
- ``BUCKETSCRIBE_WHISPER_MODEL``: a CTranslate2 Whisper folder to use instead of the default
"""

from __future__ import annotations

import io
import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from bucketscribe.local.model_store import whisper_model_dir
from bucketscribe.local.speech import (
    ProgressCallback,
    Recognition,
    RecognizedSegment,
    RecognizedWord,
    UnreadableAudio,
)

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper import WhisperModel

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects


class WhisperSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BUCKETSCRIBE_WHISPER_", extra="ignore")

    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str | None = None
    beam_size: int = Field(default=1, ge=1)
    # On: Whisper invents text in long silences (hold times, gaps between turns); the Silero VAD
    # model ships inside faster-whisper, so this works offline.
    vad_filter: bool = True
    cpu_threads: int = Field(default=0, ge=0)
    num_workers: int = Field(default=1, ge=1)


class WhisperSpeechEngine:
    """Recognises whole recordings with a local Whisper model; safe to share across threads."""

    def __init__(self, model_dir: Path | None = None, *, settings: WhisperSettings | None = None) -> None:
        self._model_dir = model_dir
        self._settings = settings or WhisperSettings()
        self._model: WhisperModel | None = None
        self._load_lock = threading.Lock()
        self.device: str | None = None
        self.compute_type: str | None = None
        self.load_seconds: float | None = None

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now instead of on the first ``recognize`` (a warm-up)."""
        self._loaded_model()

    def recognize(
        self,
        audio: bytes | Path,
        *,
        language: str | None = None,
        translate: bool = False,
        channel: int | None = None,
        word_timestamps: bool = True,
        on_progress: ProgressCallback | None = None,
    ) -> Recognition:
        samples = decode_speech(audio, channel=channel)
        duration_ms = round(len(samples) * 1000 / SAMPLE_RATE)
        if on_progress is not None:
            on_progress(0, duration_ms)  # the length is known once decoded, before any text
        model = self._loaded_model()
        started = time.perf_counter()
        segments, info = model.transcribe(
            samples,
            language=_whisper_language(language, model),
            task="translate" if translate else "transcribe",
            beam_size=self._settings.beam_size,
            vad_filter=self._settings.vad_filter,
            word_timestamps=word_timestamps,
        )
        # transcribe() is lazy: decoding happens while the segments are iterated, so each segment
        # is a step of progress through the audio.
        recognized = []
        for raw in segments:
            recognized.append(_segment(raw, duration_ms))
            if on_progress is not None:
                on_progress(recognized[-1].end_ms, duration_ms)
        if on_progress is not None:
            on_progress(duration_ms, duration_ms)
        elapsed = time.perf_counter() - started
        logger.debug(
            "recognised %d ms of audio in %.2f s (RTF %.3f), language %s",
            duration_ms,
            elapsed,
            elapsed * 1000 / max(duration_ms, 1),
            info.language,
        )
        return Recognition(language=info.language, duration_ms=duration_ms, segments=recognized)

    def _loaded_model(self) -> WhisperModel:
        model = self._model
        if model is not None:
            return model
        with self._load_lock:
            if self._model is None:
                self._model = self._load_model()
            return self._model

    def _load_model(self) -> WhisperModel:
        import ctranslate2
        from faster_whisper import WhisperModel

        settings = self._settings
        device = settings.device
        if device == "auto":
            device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
        compute_type = settings.compute_type or ("float16" if device == "cuda" else "int8")
        folder = self._model_dir or whisper_model_dir()
        started = time.perf_counter()
        model = WhisperModel(
            str(folder),
            device=device,
            compute_type=compute_type,
            cpu_threads=settings.cpu_threads,
            num_workers=settings.num_workers,
            local_files_only=True,
        )
        self.load_seconds = time.perf_counter() - started
        self.device, self.compute_type = device, compute_type
        logger.info(
            "loaded Whisper model %s on %s/%s in %.2f s", folder, device, compute_type, self.load_seconds
        )
        return model


def _whisper_language(language: str | None, model: WhisperModel) -> str | None:
    """Map a provider-style hint ("en-US", "zh_cn", "EN") to Whisper's code, or None to detect."""
    if not language:
        return None
    code = language.replace("_", "-").split("-")[0].lower()
    if code not in model.supported_languages:
        raise ValueError(f"language {language!r} is not one the Whisper model knows")
    return code


def _segment(segment: Any, duration_ms: int) -> RecognizedSegment:
    words = [
        RecognizedWord(
            start_ms=_clamp_ms(word.start, duration_ms),
            end_ms=max(_clamp_ms(word.end, duration_ms), _clamp_ms(word.start, duration_ms)),
            text=word.word.strip(),
            probability=word.probability,
        )
        for word in segment.words or ()
        if word.word.strip()
    ]
    start_ms = _clamp_ms(segment.start, duration_ms)
    return RecognizedSegment(
        start_ms=start_ms,
        end_ms=max(_clamp_ms(segment.end, duration_ms), start_ms),
        text=segment.text.strip(),
        words=words,
    )


def _clamp_ms(seconds: float, duration_ms: int) -> int:
    # Whisper's timestamps come from 20 ms tokens and can land slightly past the audio's end.
    return min(max(round(seconds * 1000), 0), duration_ms)


def decode_speech(audio: bytes | Path, *, channel: int | None = None) -> np.ndarray:
    """Decode any container/codec PyAV reads to 16 kHz float32 mono samples.

    ``channel`` keeps one channel of a multi-channel recording (0 = left); ``None`` averages
    all channels. Raises ``UnreadableAudio`` with the reason when there is nothing to decode.
    """
    import av
    import numpy as np

    if isinstance(audio, Path) and not audio.is_file():
        raise FileNotFoundError(audio)
    source: str | io.BytesIO = str(audio) if isinstance(audio, Path) else io.BytesIO(audio)
    planes: list[np.ndarray] = []
    try:
        with av.open(source, mode="r", metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise UnreadableAudio("the file has no audio stream")
            stream = container.streams.audio[0]
            channels = stream.codec_context.channels
            if channel is not None and not 0 <= channel < channels:
                raise UnreadableAudio(f"channel {channel} was asked for, but the audio has {channels}")
            # fltp keeps the source's channel layout as separate planes, one row per channel.
            resampler = av.AudioResampler(format="fltp", rate=SAMPLE_RATE)
            for frame in _decoded_frames(container, stream):
                planes.extend(out.to_ndarray() for out in resampler.resample(frame))
            planes.extend(out.to_ndarray() for out in resampler.resample(None))
    except av.FFmpegError as error:
        raise UnreadableAudio(f"cannot decode the audio: {error}") from error
    if not planes:
        raise UnreadableAudio("the audio stream holds no decodable samples")
    pcm = np.concatenate(planes, axis=1)
    mono = pcm[channel] if channel is not None else pcm.mean(axis=0)
    return np.ascontiguousarray(mono, dtype=np.float32)


def _decoded_frames(container: Any, stream: Any) -> Any:
    """Decoded audio frames, skipping damaged packets the way ffmpeg's CLI does."""
    import av

    for packet in container.demux(stream):
        try:
            yield from packet.decode()
        except av.InvalidDataError:
            continue


_shared_engine: WhisperSpeechEngine | None = None
_shared_lock = threading.Lock()


def shared_engine() -> WhisperSpeechEngine:
    """The process-wide engine, so every emulator in the process shares one loaded model."""
    global _shared_engine
    with _shared_lock:
        if _shared_engine is None:
            _shared_engine = WhisperSpeechEngine()
        return _shared_engine

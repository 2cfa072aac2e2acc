"""The offline speech engine: faster-whisper (CTranslate2) behind the ``SpeechEngine`` protocol.

Nothing heavy happens at import or construction: the model is found (or assembled, see
``model_store``) and loaded on the first ``recognize``. One loaded model serves every thread:
faster-whisper's ``WhisperModel.transcribe`` keeps its per-call state in locals, and
CTranslate2 queues concurrent ``generate`` calls onto its ``num_workers`` model replicas, so
only the load itself needs a lock.

How a recording is decoded (``BUCKETSCRIBE_WHISPER_DECODING``):

- ``vad_chunks`` (default): Silero voice activity cuts the recording into chunks of speech of
  at most 30 s (one Whisper window), cut only between utterances; each chunk is decoded on its
  own, greedily, without the previous chunk's text as a prompt and without the temperature
  fallback. That fallback is what lost whole windows of repetitive speech (hold messages, IVR
  prompts, numbers read back): a faithful transcript of a message said three times compresses
  well, so it failed the "too repetitive" compression-ratio test; the fallback then sampled
  at rising temperatures, preferred the one short garbage sample that passed the test, and its
  low log-probability plus a high no-speech probability made the decoder skip the whole 30 s
  window (seek += 30 s), without a word. Decoding stays deterministic, too: no sampling.
  Whisper's own no-speech test still applies: a chunk it hears as silence (a confident
  no-speech token and a low log-probability) is skipped, which loses at most that chunk, and
  the coverage check then names it.
- ``sequential``: faster-whisper's own loop over 30 s windows with the fallback and previous
  text as prompt (the engine's behaviour before ``vad_chunks``; kept for comparison).
- ``batched``: faster-whisper's ``BatchedInferencePipeline`` (VAD chunks decoded in batches).

Whatever the decoding, the voice activity found on the audio comes back with the recognition
(``Recognition.voice_activity``), so callers can check the text covers the speech
(``bucketscribe.domain.coverage``).

Settings come from the environment (``BUCKETSCRIBE_WHISPER_*``) or are passed in:

- ``BUCKETSCRIBE_WHISPER_DEVICE``: ``auto`` (default: CUDA if CTranslate2 sees a GPU), ``cpu``, ``cuda``
- ``BUCKETSCRIBE_WHISPER_COMPUTE_TYPE``: default ``int8`` on CPU, ``float16`` on CUDA
- ``BUCKETSCRIBE_WHISPER_DECODING``: ``vad_chunks`` (default), ``sequential``, ``batched``
- ``BUCKETSCRIBE_WHISPER_BEAM_SIZE`` (1: greedy, fastest on 2 cores), ``..._VAD_FILTER`` (on;
  ``sequential`` only: the other decodings always cut by voice activity), ``..._BATCH_SIZE``
  (8, ``batched`` only), ``..._CPU_THREADS`` (0: CTranslate2's default), ``..._NUM_WORKERS`` (1)
- ``BUCKETSCRIBE_WHISPER_MODEL``: a CTranslate2 Whisper folder to use instead of the default
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from bucketscribe.domain.coverage import SpeechSpan
from bucketscribe.settings import EnvironmentSettings
from bucketscribe_local.model_store import whisper_model_dir
from bucketscribe_local.speech import (
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
WINDOW_MS = 30_000  # Whisper hears at most this much at once
Decoding = Literal["vad_chunks", "sequential", "batched"]


class WhisperSettings(EnvironmentSettings):
    env_prefix = "BUCKETSCRIBE_WHISPER_"

    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str | None = None
    decoding: Decoding = "vad_chunks"
    beam_size: int = Field(default=1, ge=1)
    # On: Whisper invents text in long silences (hold times, gaps between turns); the Silero VAD
    # model ships inside faster-whisper, so this works offline. (``sequential`` only.)
    vad_filter: bool = True
    batch_size: int = Field(default=8, ge=1)
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
    def name(self) -> str:
        """``faster-whisper <model folder> (<decoding>)``: what transcripts say produced them."""
        folder = self._model_dir.name if self._model_dir else "whisper-base"
        return f"faster-whisper {folder} ({self._settings.decoding})"

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
        speech = detect_voice_activity(samples, channel=channel)
        options: dict[str, Any] = {
            "language": _whisper_language(language, model),
            "task": "translate" if translate else "transcribe",
            "beam_size": self._settings.beam_size,
            "word_timestamps": word_timestamps,
        }
        segments, info = self._transcribe(model, samples, speech, options)
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
            "recognised %d ms of audio (%s) in %.2f s (RTF %.3f), language %s",
            duration_ms,
            self._settings.decoding,
            elapsed,
            elapsed * 1000 / max(duration_ms, 1),
            info.language if info else None,
        )
        return Recognition(
            language=info.language if info else _whisper_language(language, model),
            duration_ms=duration_ms,
            segments=recognized,
            voice_activity=speech,
        )

    def _transcribe(
        self, model: WhisperModel, samples: np.ndarray, speech: list[SpeechSpan], options: dict[str, Any]
    ) -> tuple[Iterable[Any], Any]:
        """The lazy segments and the info of one faster-whisper call, per the decoding setting."""
        decoding = self._settings.decoding
        if decoding == "sequential":
            return model.transcribe(samples, vad_filter=self._settings.vad_filter, **options)
        if decoding == "batched":
            from faster_whisper import BatchedInferencePipeline

            # A pipeline per call: it keeps per-call state on itself, and costs nothing to make.
            pipeline = BatchedInferencePipeline(model)
            return pipeline.transcribe(samples, batch_size=self._settings.batch_size, **options)
        chunks = decoding_chunks(speech)
        if not chunks:
            return [], None  # no speech: nothing to decode, nothing to invent
        if options["language"] is None:
            # Detected as the sequential decoding did (on its VAD's speech, padded 400 ms), not on
            # the first chunk: on short clips the two can disagree, and the old way was tested.
            options = {**options, "language": model.detect_language(samples, vad_filter=True)[0]}
        return model.transcribe(
            samples,
            clip_timestamps=[edge / 1000 for chunk in chunks for edge in chunk],
            vad_filter=False,
            condition_on_previous_text=False,
            # Greedy only: see the module docstring for how the fallback lost whole windows.
            temperature=0.0,
            compression_ratio_threshold=None,
            **options,
        )

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


# Utterances closer than half a second stay one region, so chunks are cut at real pauses.
_VAD_OPTIONS = {
    "min_silence_duration_ms": 500,
    "speech_pad_ms": 200,
    "max_speech_duration_s": WINDOW_MS / 1000,
}


def detect_voice_activity(samples: np.ndarray, *, channel: int | None = None) -> list[SpeechSpan]:
    """Where there is speech in 16 kHz mono samples (Silero VAD, shipped with faster-whisper).

    Regions are at most one Whisper window long: longer speech is split at a pause near that
    length (Silero's rule: the last silence of 98 ms or more), or cut if there is none.
    """
    from faster_whisper.vad import VadOptions, get_speech_timestamps

    if len(samples) == 0:
        return []
    regions = get_speech_timestamps(samples, VadOptions(**_VAD_OPTIONS), sampling_rate=SAMPLE_RATE)
    return [
        SpeechSpan(
            start_ms=round(region["start"] * 1000 / SAMPLE_RATE),
            end_ms=round(region["end"] * 1000 / SAMPLE_RATE),
            channel=channel,
        )
        for region in regions
    ]


def decoding_chunks(speech: Sequence[SpeechSpan], max_ms: int = WINDOW_MS) -> list[tuple[int, int]]:
    """Consecutive speech regions joined into chunks of at most ``max_ms``, cut between regions.

    A region longer than ``max_ms`` (VAD keeps them to one window) is a chunk of its own;
    faster-whisper then decodes it in more than one window.
    """
    chunks: list[tuple[int, int]] = []
    for span in sorted(speech, key=lambda s: s.start_ms):
        if chunks and span.end_ms - chunks[-1][0] <= max_ms:
            chunks[-1] = (chunks[-1][0], max(chunks[-1][1], span.end_ms))
        else:
            chunks.append((span.start_ms, span.end_ms))
    return chunks


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

"""The offline speech engine: faster-whisper (CTranslate2) behind the ``SpeechEngine`` protocol.

Nothing heavy happens at import or construction: the model is found (or assembled, see
``model_store``) and loaded on the first ``recognize``. One loaded model serves every thread:
faster-whisper's ``WhisperModel.transcribe`` keeps its per-call state in locals, and
CTranslate2 queues concurrent ``generate`` calls onto its ``num_workers`` model replicas, so
only the load itself needs a lock.

How a recording is decoded (``BUCKETSCRIBE_WHISPER_DECODING``):

- ``vad_chunks`` (default): Silero voice activity cuts the recording into chunks of speech of
  at most 20 s, cut only between utterances (and wherever a pause of 4 s or more falls, so that
  no chunk carries a long silence for Whisper to fill with invented words); the chunks are
  decoded in batches by ``batch_decoder``, each encoded at its own length rather than padded to
  a 30 s window (which is what makes it 2-3 times faster than ``vad_windows``), greedily,
  without the previous chunk's text as a prompt and without the temperature fallback. That
  fallback is what lost whole windows of repetitive speech (hold messages, IVR prompts,
  numbers read back): a faithful transcript of a message said three times compresses well,
  so it failed the "too repetitive" compression-ratio test; the fallback then sampled at rising
  temperatures, preferred the one short garbage sample that passed the test, and its
  low log-probability plus a high no-speech probability made the decoder skip the whole 30 s
  window (seek += 30 s), without a word. Decoding stays deterministic, too: no sampling.
  Whisper's own no-speech test still applies: a chunk it hears as silence (a confident
  no-speech token and a low log-probability) is skipped, which loses at most that chunk, and
  the coverage check then names it.
- ``vad_windows``: the same chunks as the engine cut them before ``vad_chunks`` (up to 30 s,
  joined across any pause), each decoded by faster-whisper in a padded 30 s window, one at a
  time (kept for comparison: ``bench/engine.py``).
- ``sequential``: faster-whisper's own loop over 30 s windows with the fallback and previous
  text as prompt (the engine's behaviour before voice-activity chunks; kept for comparison).
- ``batched``: faster-whisper's ``BatchedInferencePipeline`` (VAD chunks decoded in batches).

Whatever the decoding, the voice activity found on the audio comes back with the recognition
(``Recognition.voice_activity``), so callers can check the text covers the speech
(``bucketscribe.domain.coverage``).

Settings come from the environment (``BUCKETSCRIBE_WHISPER_*``) or are passed in:

- ``BUCKETSCRIBE_WHISPER_DEVICE``: ``auto`` (default: CUDA if CTranslate2 sees a GPU), ``cpu``, ``cuda``
- ``BUCKETSCRIBE_WHISPER_COMPUTE_TYPE``: default ``int8`` on CPU, ``float16`` on CUDA
- ``BUCKETSCRIBE_WHISPER_DECODING``: ``vad_chunks`` (default), ``vad_windows``, ``sequential``,
  ``batched``
- ``BUCKETSCRIBE_WHISPER_BEAM_SIZE`` (1: greedy, fastest on 2 cores), ``..._VAD_FILTER`` (on;
  ``sequential`` only: the other decodings always cut by voice activity), ``..._BATCH_SIZE``
  (8, ``vad_chunks`` and ``batched``), ``..._NUM_WORKERS`` (decodings side by side: 2 on two
  cores or more), ``..._CPU_THREADS`` (threads per worker; 0: the cores shared out)
- ``BUCKETSCRIBE_WHISPER_MODEL``: a CTranslate2 Whisper folder to use instead of the default
"""

from __future__ import annotations

import io
import logging
import os
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

    from bucketscribe_local.batch_decoder import WhisperBatchDecoder

logger = logging.getLogger(__name__)

SAMPLE_RATE = 16_000  # what Whisper's feature extractor expects
WINDOW_MS = 30_000  # Whisper hears at most this much at once
# The new decoding's chunks: short enough that the encoder's cost per second stays low (it grows
# with the input's length: 15 ms/s at 30 s, 7 ms/s at 10 s on 2 cores), long enough to give
# Whisper a few sentences of context. On the 10-minute bench clip (decoded without timestamps,
# two workers): 15 s chunks 46-53x real time at WER 0.080, 20 s 42-48x at 0.070, 25 s 29x at
# 0.085, 30 s 31x at 0.070.
CHUNK_MS = 20_000
# A pause this long ends a chunk whatever its length: silence in a chunk costs encoder time and
# invites invented words (a 20 s silence inside one window lost the words after it on two CPUs).
# Shorter pauses stay inside, for context: one side of a call pauses 3-5 s while the other talks,
# and its turns heard together read better (8 kHz call channels: WER 0.311 cut at 2 s pauses,
# 0.280 at 4 s).
CHUNK_GAP_MS = 4_000
Decoding = Literal["vad_chunks", "vad_windows", "sequential", "batched"]


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
    # Decodings run side by side on ``num_workers`` model replicas (the weights are shared), each
    # on ``cpu_threads`` threads (0: the cores shared out among the workers). On 2 cores two
    # single-threaded workers decode 16 short chunks in 1.33 s against 1.95 s for one worker on
    # both cores: Whisper base's matrices are too small for two threads to share one well.
    cpu_threads: int = Field(default=0, ge=0)
    num_workers: int = Field(default_factory=lambda: 2 if (os.cpu_count() or 1) >= 2 else 1, ge=1)

    @property
    def threads_per_worker(self) -> int:
        return self.cpu_threads or max((os.cpu_count() or 1) // self.num_workers, 1)


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
        if self._settings.decoding == "vad_chunks":
            recognized, ran_language = self._decode_chunks(
                model,
                samples,
                speech,
                _whisper_language(language, model),
                translate,
                word_timestamps,
                on_progress,
            )
        else:
            recognized, ran_language = self._decode_with_faster_whisper(
                model, samples, speech, language, translate, word_timestamps, on_progress
            )
        if on_progress is not None:
            on_progress(duration_ms, duration_ms)
        elapsed = time.perf_counter() - started
        logger.debug(
            "recognised %d ms of audio (%s) in %.2f s (RTF %.3f), language %s",
            duration_ms,
            self._settings.decoding,
            elapsed,
            elapsed * 1000 / max(duration_ms, 1),
            ran_language,
        )
        return Recognition(
            language=ran_language, duration_ms=duration_ms, segments=recognized, voice_activity=speech
        )

    def decoder(self, *, workers: int | None = None) -> WhisperBatchDecoder:
        """The batch decoder over the loaded model (loading it first), e.g. for real-time streams;
        ``workers``: how many of its batches it decodes side by side (default: the model's)."""
        from bucketscribe_local.batch_decoder import WhisperBatchDecoder

        return WhisperBatchDecoder(
            self._loaded_model(),
            beam_size=self._settings.beam_size,
            max_batch=self._settings.batch_size,
            workers=self._settings.num_workers if workers is None else workers,
        )

    @property
    def workers(self) -> int:
        """How many decodings the loaded model runs side by side."""
        return self._settings.num_workers

    def _decode_chunks(
        self,
        model: WhisperModel,
        samples: np.ndarray,
        speech: list[SpeechSpan],
        language: str | None,
        translate: bool,
        word_timestamps: bool,
        on_progress: ProgressCallback | None,
    ) -> tuple[list[RecognizedSegment], str | None]:
        """``vad_chunks``: the speech in chunks of up to 20 s, decoded in batches (see the module)."""
        from bucketscribe_local.batch_decoder import DecodeChunk

        chunks = decoding_chunks(speech, max_ms=CHUNK_MS, max_gap_ms=CHUNK_GAP_MS)
        if not chunks:
            return [], language  # no speech: nothing to decode, nothing to invent
        decoder = self.decoder()
        if language is None:
            language = decoder.choose_language(_speech_window(samples, chunks)).language
        work = [
            DecodeChunk(
                samples=samples[_sample(start) : _sample(end)],
                offset_ms=start,
                language=language,
                task="translate" if translate else "transcribe",
                word_timestamps=word_timestamps,
                speech=tuple(
                    (max(s.start_ms, start) - start, min(s.end_ms, end) - start)
                    for s in speech
                    if s.start_ms < end and s.end_ms > start
                ),
            )
            for start, end in chunks
        ]
        duration_ms = round(len(samples) * 1000 / SAMPLE_RATE)
        speech_ms = sum(end - start for start, end in chunks)

        def progress(done_ms: int) -> None:
            # Batches go shortest first, not in time order: progress is the share of the speech
            # decoded, spread over the recording's length.
            if on_progress is not None:
                on_progress(min(done_ms * duration_ms // max(speech_ms, 1), duration_ms), duration_ms)

        decoded = decoder.decode(work, on_batch=progress)
        segments = sorted(
            (segment for result in decoded for segment in result.segments),
            key=lambda segment: (segment.start_ms, segment.end_ms),
        )
        return segments, language

    def _decode_with_faster_whisper(
        self,
        model: WhisperModel,
        samples: np.ndarray,
        speech: list[SpeechSpan],
        language: str | None,
        translate: bool,
        word_timestamps: bool,
        on_progress: ProgressCallback | None,
    ) -> tuple[list[RecognizedSegment], str | None]:
        """``vad_windows``, ``sequential`` and ``batched``: faster-whisper's own loops."""
        duration_ms = round(len(samples) * 1000 / SAMPLE_RATE)
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
        return recognized, info.language if info else options["language"]

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
            cpu_threads=settings.threads_per_worker,
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
    "max_speech_duration_s": CHUNK_MS / 1000,
}


def detect_voice_activity(samples: np.ndarray, *, channel: int | None = None) -> list[SpeechSpan]:
    """Where there is speech in 16 kHz mono samples (Silero VAD, shipped with faster-whisper).

    Regions are at most ``CHUNK_MS`` long: longer speech is split at a pause near that length
    (Silero's rule: the last silence of 98 ms or more), or cut if there is none.
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


def decoding_chunks(
    speech: Sequence[SpeechSpan], max_ms: int = WINDOW_MS, max_gap_ms: int | None = None
) -> list[tuple[int, int]]:
    """Consecutive speech regions joined into chunks of at most ``max_ms``, cut between regions
    (and, with ``max_gap_ms``, at every pause at least that long).

    A region longer than ``max_ms`` (VAD keeps them to ``CHUNK_MS``) is a chunk of its own;
    faster-whisper then decodes it in more than one window.
    """
    chunks: list[tuple[int, int]] = []
    for span in sorted(speech, key=lambda s: s.start_ms):
        joinable = chunks and span.end_ms - chunks[-1][0] <= max_ms
        if joinable and max_gap_ms is not None and span.start_ms - chunks[-1][1] >= max_gap_ms:
            joinable = False
        if joinable:
            chunks[-1] = (chunks[-1][0], max(chunks[-1][1], span.end_ms))
        else:
            chunks.append((span.start_ms, span.end_ms))
    return chunks


def _sample(ms: int) -> int:
    return ms * SAMPLE_RATE // 1000


def _speech_window(samples: np.ndarray, chunks: Sequence[tuple[int, int]]) -> np.ndarray:
    """Up to one Whisper window of the recording's speech, for language detection: the chunks
    joined without the silence between them (as faster-whisper's own detection hears it)."""
    import numpy as np

    parts: list[np.ndarray] = []
    left = WINDOW_MS * SAMPLE_RATE // 1000
    for start, end in chunks:
        part = samples[_sample(start) : _sample(end)][:left]
        parts.append(part)
        left -= len(part)
        if left <= 0:
            break
    return np.concatenate(parts)


# The languages of the multilingual Whisper models (faster-whisper's ``_LANGUAGE_CODES``, which a
# unit test compares with this): known without importing faster-whisper (about a second), so that
# a real-time stream's run-task is answered at once.
WHISPER_LANGUAGES = frozenset(
    [
        "af",
        "am",
        "ar",
        "as",
        "az",
        "ba",
        "be",
        "bg",
        "bn",
        "bo",
        "br",
        "bs",
        "ca",
        "cs",
        "cy",
        "da",
        "de",
        "el",
        "en",
        "es",
        "et",
        "eu",
        "fa",
        "fi",
        "fo",
        "fr",
        "gl",
        "gu",
        "ha",
        "haw",
        "he",
        "hi",
        "hr",
        "ht",
        "hu",
        "hy",
        "id",
        "is",
        "it",
        "ja",
        "jw",
        "ka",
        "kk",
        "km",
        "kn",
        "ko",
        "la",
        "lb",
        "ln",
        "lo",
        "lt",
        "lv",
        "mg",
        "mi",
        "mk",
        "ml",
        "mn",
        "mr",
        "ms",
        "mt",
        "my",
        "ne",
        "nl",
        "nn",
        "no",
        "oc",
        "pa",
        "pl",
        "ps",
        "pt",
        "ro",
        "ru",
        "sa",
        "sd",
        "si",
        "sk",
        "sl",
        "sn",
        "so",
        "sq",
        "sr",
        "su",
        "sv",
        "sw",
        "ta",
        "te",
        "tg",
        "th",
        "tk",
        "tl",
        "tr",
        "tt",
        "uk",
        "ur",
        "uz",
        "vi",
        "yi",
        "yo",
        "zh",
        "yue",
    ]
)


def whisper_language_code(language: str) -> str | None:
    """Whisper's code for a provider-style language ("en-US", "zh_cn", "EN"), None if it has none."""
    code = language.replace("_", "-").split("-")[0].lower()
    return code if code in WHISPER_LANGUAGES else None


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

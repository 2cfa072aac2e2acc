"""The recognition passes of real-time streams, run for every stream of a process at once.

A real-time stream (``dashscope_server.streams``) asks for a pass whenever voice activity ends an
utterance (a final pass) or an utterance has grown by a second (an interim one). How those passes
run is this module's business:

- ``BatchedWhisperPasses`` (the offline Whisper engine): worker threads (two on two cores) take
  what is waiting, finals and streams' first passes first in the order they became due, then
  interims (the streams served longest ago first), and decode it as one batch
  (``batch_decoder``: each utterance encoded at its own length, the batch decoded together). A
  pass costs tens of milliseconds instead of a 30 s window's second, and no stream waits for
  more than the batches in progress: a stream that talks a lot cannot starve the others, because
  every final due joins the next batch. Routine interims only fill spare time and never take
  the last free worker, so their cost is bounded by what the finals leave.
- ``EnginePasses`` (any other ``SpeechEngine``: the instant and digest engines, test engines):
  each pass is a ``recognize`` of the utterance as a WAV, on a thread pool.

The language of a stream is the stream's business (``streams``): given, or decided once from
enough of its speech. A pass either names it or asks for the decision (``decide_language``):
Whisper's likeliest languages on all the speech the stream has sent so far (not the one
utterance), the pass read in each of them in the batch, and ``batch_decoder.best_reading``
keeps the likeliest whose reading does not fail.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bucketscribe_local.emulator_kit.audio import wav_file
from bucketscribe_local.speech import RecognizedSegment, RecognizedWord, SpeechEngine

if TYPE_CHECKING:
    import numpy as np

    from bucketscribe_local.batch_decoder import DecodeChunk, DecodedChunk, WhisperBatchDecoder
    from bucketscribe_local.whisper_engine import WhisperSpeechEngine

logger = logging.getLogger(__name__)

WHISPER_RATE = 16_000
# A stream's language is chosen between the two its speech so far is likeliest in, heard without
# a window's padding, whatever their probabilities (a file's between three of at least 5 % in a
# 10 s window): the readings decide, and on the first seconds of the bundled samples and of an
# 8 kHz call the language spoken was always one of the two (the window and the threshold cost
# time eight streams deciding at once do not have: 0.15 s a stream on one core).
STREAM_LANGUAGE_CANDIDATES = 2


@dataclass(frozen=True)
class StreamPass:
    """One recognition pass of a stream.

    ``audio`` is 16-bit mono PCM at ``sample_rate`` starting at ``start_ms`` of the stream, or,
    with ``sample_rate`` None, a whole recording in a container to decode (formats a stream
    cannot cut as it arrives). ``language`` is the stream's, when it is known; otherwise
    ``decide_language`` asks this pass to decide it from ``evidence`` (PCM of the stream's speech
    so far, this pass's included), or, without it, the pass hears the language itself (an interim
    before the decision). ``translate_to``: also translate the utterance, unless it is spoken in
    that language (the translation is then the transcript itself).
    """

    stream: str
    audio: bytes
    sample_rate: int | None
    start_ms: int
    final: bool
    language: str | None = None
    decide_language: bool = False
    evidence: bytes = b""
    translate_to: str | None = None
    word_timestamps: bool = True
    first: bool = False
    """The stream has had no result yet: this interim is its first package, due like a final."""

    @property
    def end_ms(self) -> int | None:
        if self.sample_rate is None:
            return None
        return self.start_ms + len(self.audio) // 2 * 1000 // self.sample_rate


@dataclass(frozen=True)
class PassResult:
    segments: list[RecognizedSegment]
    """In stream time, never past the pass's audio."""
    translated: list[RecognizedSegment] | None
    """Translated segments; None when none was asked or the speech is in the target language."""
    language: str | None
    """The language the pass ran with (the stream's, decided or given, or what it heard)."""
    decided: bool = False
    """This pass decided the stream's language."""


class StreamDecoder(Protocol):
    default_language: str | None
    """The language of a stream that names none (``--language``), if any."""

    @property
    def language_evidence_ms(self) -> int:
        """How much speech a stream should send before its language is decided on an interim pass
        (a final pass decides with whatever there is); 0: the engine needs no decision."""
        ...

    def known_language(self, language: str) -> str | None:
        """The engine's code for a service language ("en-US", "zh"), or None if it does not know it."""
        ...

    def submit(self, work: StreamPass) -> Future[PassResult]: ...

    def withdraw(self, future: Future[PassResult]) -> bool:
        """Cancel a submitted pass that has not started; True if it will not run."""
        ...

    def has_room(self) -> bool:
        """Whether an interim pass would be taken at once (a worker free, nothing waiting)."""
        ...

    def close(self) -> None: ...


# ----- any engine ---------------------------------------------------------------------------------


class EnginePasses:
    """Each pass a ``recognize`` call on a thread pool, as the emulator always ran them."""

    language_evidence_ms = 0
    default_language: str | None = None  # the engine applies its own default, if it has one

    def __init__(self, engine: SpeechEngine, *, workers: int = 8) -> None:
        self.engine = engine
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stream-pass")

    def known_language(self, language: str) -> str | None:
        return language

    def submit(self, work: StreamPass) -> Future[PassResult]:
        return self._pool.submit(self._run, work)

    def withdraw(self, future: Future[PassResult]) -> bool:
        return future.cancel()

    def has_room(self) -> bool:
        return True

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _run(self, work: StreamPass) -> PassResult:
        audio = work.audio if work.sample_rate is None else wav_file(work.audio, sample_rate=work.sample_rate)
        heard = self._recognize(audio, work.language, translate=False)
        segments = shifted(heard.segments, work.start_ms, work.end_ms)
        translated = None
        if work.translate_to is not None and heard.language != work.translate_to:
            translation = self._recognize(audio, work.language, translate=True)
            translated = shifted(translation.segments, work.start_ms, work.end_ms)
            if not segments and translated:  # transcription found nothing but translation did
                segments = translated
        return PassResult(segments=segments, translated=translated, language=heard.language, decided=False)

    def _recognize(self, audio: bytes, language: str | None, *, translate: bool) -> _Heard:
        try:
            recognition = self.engine.recognize(
                audio, language=language, translate=translate, word_timestamps=True
            )
        except ValueError as error:
            if language is None or _is_unreadable(error):
                raise
            # A language the service knows but the offline engine does not: let it detect one.
            logger.warning("the engine does not know language %r; detecting it instead", language)
            recognition = self.engine.recognize(audio, translate=translate, word_timestamps=True)
        return _Heard(recognition.segments, recognition.language)


@dataclass(frozen=True)
class _Heard:
    segments: list[RecognizedSegment]
    language: str | None


def _is_unreadable(error: ValueError) -> bool:
    from bucketscribe_local.speech import UnreadableAudio

    return isinstance(error, UnreadableAudio)


# ----- Whisper, in batches ------------------------------------------------------------------------


@dataclass
class _Waiting:
    work: StreamPass
    future: Future[PassResult]
    order: int


@dataclass
class PassCounters:
    """What the worker has done (for tests and benchmarks)."""

    batches: int = 0
    passes: int = 0
    finals: int = 0
    interims: int = 0
    decisions: int = 0
    largest_batch: int = 0
    batch_sizes: list[int] = field(default_factory=list)


class BatchedWhisperPasses:
    """Every stream's passes through one ``WhisperBatchDecoder``, in batches (see the module).

    ``workers`` threads (the engine's: the model decodes that many batches side by side) each
    take the next batch when they are free, so a pass that arrives while a batch runs waits for
    at most the shorter of the two. The decoder is made on a worker thread when the first pass
    arrives (loading the model if it is not loaded yet): nothing heavy happens on the event loop.
    """

    # Whisper hears the language of a few words badly (see ``choose_language``): interims wait
    # for 3 s of a stream's speech before it is decided (a final decides with what there is).
    language_evidence_ms = 3_000

    def __init__(
        self,
        engine: WhisperSpeechEngine,
        *,
        max_batch: int = 8,
        workers: int | None = None,
        decoder_factory: Callable[[], WhisperBatchDecoder] | None = None,
        default_language: str | None = None,
    ) -> None:
        self._engine = engine
        self.default_language = default_language
        # Each worker decodes its batches one at a time: the workers are the parallelism.
        self._decoder_factory = decoder_factory or (lambda: engine.decoder(workers=1))
        self._decoder: WhisperBatchDecoder | None = None
        self._decoder_lock = threading.Lock()
        self.workers = workers if workers is not None else getattr(engine, "workers", 1)
        self.max_batch = max_batch
        self._ready = threading.Condition()
        self._finals: deque[_Waiting] = deque()
        self._interims: list[_Waiting] = []
        self._last_served: dict[str, int] = {}
        self._order = itertools.count()
        self._closed = False
        self._threads: list[threading.Thread] = []
        self._idle = 0  # workers waiting for work
        self._interim_workers = 0  # workers decoding a batch of routine interims
        self.counters = PassCounters()

    def known_language(self, language: str) -> str | None:
        from bucketscribe_local.whisper_engine import whisper_language_code

        return whisper_language_code(language)

    def submit(self, work: StreamPass) -> Future[PassResult]:
        future: Future[PassResult] = Future()
        with self._ready:
            if self._closed:
                future.set_exception(RuntimeError("the stream decoder is closed"))
                return future
            waiting = _Waiting(work, future, next(self._order))
            (self._finals.append if work.final or work.first else self._interims.append)(waiting)
            if not self._threads:
                for number in range(max(self.workers, 1)):
                    thread = threading.Thread(target=self._work, name=f"stream-decoder-{number}", daemon=True)
                    self._threads.append(thread)
                    thread.start()
            self._ready.notify()
        return future

    def close(self) -> None:
        with self._ready:
            self._closed = True
            left = [*self._finals, *self._interims]
            self._finals.clear()
            self._interims.clear()
            self._ready.notify_all()
        for waiting in left:
            waiting.future.cancel()

    # ----- the worker ----------------------------------------------------------------------------

    def next_batch(self, limit: int | None = None, *, interims: bool = True) -> list[_Waiting]:
        """Finals (and streams' first passes) first, oldest first; then, unless ``interims`` is
        False, interims of the streams served longest ago: as many as ``limit`` readings
        (``max_batch`` without one; see ``readings``), at least one pass."""
        size = min(limit or self.max_batch, self.max_batch)
        self._interims.sort(key=lambda w: (self._last_served.get(w.work.stream, -1), w.order))
        batch: list[_Waiting] = []
        cost = 0
        for queue in (self._finals, self._interims) if interims else (self._finals,):
            while queue and (not batch or cost + readings(queue[0].work) <= size):
                waiting = queue.popleft() if isinstance(queue, deque) else queue.pop(0)
                batch.append(waiting)
                cost += readings(waiting.work)
        for waiting in batch:
            self._last_served[waiting.work.stream] = waiting.order
        return batch

    def _interims_allowed(self) -> bool:
        # Routine interims never occupy every worker: one stays free for the next final (a final
        # due at the end of a stream would otherwise wait for someone's interim to finish).
        return self.workers < 2 or self._interim_workers < self.workers - 1

    def _has_work(self) -> bool:
        return bool(self._finals) or (bool(self._interims) and self._interims_allowed())

    def _work(self) -> None:
        while True:
            with self._ready:
                self._idle += 1
                while not (self._has_work() or self._closed):
                    self._ready.wait()
                if self._closed:
                    return
                # What waits is shared among the workers that are free: eight finals due at once
                # are two batches of four decoded side by side, not one of eight beside an idle one.
                waiting = sum(readings(w.work) for w in (*self._finals, *self._interims))
                batch = self.next_batch(limit=-(-waiting // self._idle), interims=self._interims_allowed())
                self._idle -= 1
                routine = not any(w.work.final or w.work.first for w in batch)
                self._interim_workers += routine
                if self._has_work():
                    self._ready.notify()
            try:
                self._run([w for w in batch if w.future.set_running_or_notify_cancel()])
            finally:
                with self._ready:
                    self._interim_workers -= routine
                    if self._has_work():
                        self._ready.notify()

    def has_room(self) -> bool:
        with self._ready:
            idle = self._idle > 0 or len(self._threads) < max(self.workers, 1)
            return idle and self._interims_allowed() and not self._finals and not self._interims

    def withdraw(self, future: Future[PassResult]) -> bool:
        """Take back a pass that no batch has taken yet (an interim overtaken by its final)."""
        with self._ready:
            for queue in (self._interims, self._finals):
                for waiting in queue:
                    if waiting.future is future:
                        queue.remove(waiting)
                        return future.cancel()
        return False

    def _run(self, batch: list[_Waiting]) -> None:
        if not batch:
            return
        started = time.perf_counter()
        try:
            results = self.run_passes([w.work for w in batch])
        except BaseException as error:  # every pass of the batch hears why
            logger.exception("a batch of %d stream passes failed", len(batch))
            for waiting in batch:
                waiting.future.set_exception(error)
            return
        for waiting, result in zip(batch, results, strict=True):
            waiting.future.set_result(result)
        logger.debug(
            "decoded %d finals, %d interims (%d deciding the language) in %.3f s",
            sum(1 for w in batch if w.work.final),
            sum(1 for w in batch if not w.work.final),
            sum(1 for w in batch if w.work.decide_language and w.work.language is None),
            time.perf_counter() - started,
        )

    def run_passes(self, passes: list[StreamPass]) -> list[PassResult]:
        """Decode every pass (and its translation) in batches, deciding the languages that are due.

        A pass that decides its stream's language is read in each likely language (Whisper's
        language probabilities on the stream's speech so far), in the same batch as the others
        and from one encoding of its audio, and the most probable reading wins
        (``batch_decoder.best_reading``): the decision costs a few more rows of the batch, not a
        pass of its own. Translations into another language than the one decided follow in a
        second batch.
        """
        from bucketscribe_local.batch_decoder import best_reading

        with self._decoder_lock:
            if self._decoder is None:
                self._decoder = self._decoder_factory()
            decoder = self._decoder
            self._count(passes)
        results: dict[int, PassResult] = {}
        candidates: dict[int, list[tuple[str | None, float]]] = {}
        samples: dict[int, np.ndarray] = {}
        for index, work in enumerate(passes):
            if work.sample_rate is None:  # a container: the engine's own whole-recording path
                results[index] = self._whole_recording(work, work.language)
                continue
            samples[index] = self._samples(work.audio, work.sample_rate)
            if work.language is None and work.decide_language:
                evidence = self._samples(work.evidence, work.sample_rate) if work.evidence else samples[index]
                candidates[index] = list(
                    decoder.language_candidates(
                        evidence, most=STREAM_LANGUAGE_CANDIDATES, least=0.0, window=False
                    )
                )
            else:
                candidates[index] = [(work.language, 1.0)]  # None: an early interim hears it itself
        # The first batch: every reading, and the translations of passes whose language is known.
        chunks: list[DecodeChunk] = []
        readings: dict[int, list[int]] = {}
        translations: dict[int, int] = {}
        for index, options in candidates.items():
            work = passes[index]
            readings[index] = []
            for language, _ in options:
                chunks.append(self._chunk(work, samples[index], language, "transcribe"))
                readings[index].append(len(chunks) - 1)
            known = options[0][0] if len(options) == 1 else None
            if known is not None and work.translate_to is not None and known != work.translate_to:
                chunks.append(self._chunk(work, samples[index], known, "translate"))
                translations[index] = len(chunks) - 1
        decoded = decoder.decode(chunks)
        heard: dict[int, DecodedChunk] = {}
        languages: dict[int, str] = {}
        for index, options in candidates.items():
            read = [decoded[i] for i in readings[index]]
            if len(options) > 1:
                choice = best_reading([(str(language), p) for language, p in options], read)
                best = [language for language, _ in options].index(choice.language)
                heard[index], languages[index] = read[best], choice.language
            else:
                heard[index], languages[index] = read[0], options[0][0] or read[0].language
        # The second batch: translations of passes that decided a language other than the target.
        late = [
            index
            for index in candidates
            if index not in translations
            and passes[index].translate_to is not None
            and languages[index] != passes[index].translate_to
        ]
        if late:
            more = decoder.decode(
                [self._chunk(passes[i], samples[i], languages[i], "translate") for i in late]
            )
            for index, reading in zip(late, more, strict=True):
                decoded.append(reading)
                translations[index] = len(decoded) - 1
        for index in candidates:
            work = passes[index]
            translated = decoded[translations[index]].segments if index in translations else None
            results[index] = PassResult(
                segments=shifted(heard[index].segments, 0, work.end_ms),
                translated=None if translated is None else shifted(translated, 0, work.end_ms),
                language=languages[index],
                decided=work.decide_language and work.language is None,
            )
        return [results[index] for index in range(len(passes))]

    def _count(self, passes: list[StreamPass]) -> None:
        counters = self.counters
        counters.batches += 1
        counters.passes += len(passes)
        counters.finals += sum(1 for p in passes if p.final)
        counters.interims += sum(1 for p in passes if not p.final)
        counters.decisions += sum(1 for p in passes if p.decide_language and p.language is None)
        counters.largest_batch = max(counters.largest_batch, len(passes))
        counters.batch_sizes.append(len(passes))

    def _chunk(self, work: StreamPass, samples: np.ndarray, language: str | None, task: str) -> DecodeChunk:
        from bucketscribe_local.batch_decoder import DecodeChunk

        return DecodeChunk(
            samples=samples,
            offset_ms=work.start_ms,
            language=language,
            task="translate" if task == "translate" else "transcribe",
            # An interim's words are replaced by the final's: no alignment pass for them.
            word_timestamps=work.word_timestamps and work.final,
        )

    def _whole_recording(self, work: StreamPass, language: str | None) -> PassResult:
        heard = self._engine.recognize(work.audio, language=language, word_timestamps=True)
        translated = None
        if work.translate_to is not None and heard.language != work.translate_to:
            translated = self._engine.recognize(work.audio, language=language, translate=True).segments
        return PassResult(
            segments=heard.segments,
            translated=translated,
            language=heard.language,
            decided=work.decide_language,
        )

    @staticmethod
    def _samples(pcm: bytes, sample_rate: int | None) -> np.ndarray:
        """16 kHz float samples of 16-bit PCM (resampled by PyAV when the stream is not at 16 kHz)."""
        import numpy as np

        if sample_rate == WHISPER_RATE:
            return np.frombuffer(pcm[: len(pcm) // 2 * 2], dtype="<i2").astype(np.float32) / 32768.0
        from bucketscribe_local.whisper_engine import decode_speech

        if sample_rate is None:
            return decode_speech(pcm)
        return decode_speech(wav_file(pcm, sample_rate=sample_rate))


def readings(work: StreamPass) -> int:
    """What a pass costs a batch, in readings of an utterance: one, one more for a translation
    into another language, and a pass that decides its stream's language reads it in up to
    two languages after hearing which are likely (about one more)."""
    if work.language is None and work.decide_language:
        return 1 + STREAM_LANGUAGE_CANDIDATES
    translating = work.translate_to is not None and work.language != work.translate_to
    return 1 + translating


def stream_decoder_for(engine: SpeechEngine) -> StreamDecoder:
    """Batched Whisper passes for the Whisper engine (also behind ``EngineDefaults``), a
    ``recognize`` per pass for any other engine."""
    from bucketscribe_local.speech import EngineDefaults
    from bucketscribe_local.whisper_engine import WhisperSpeechEngine

    inner, default = engine, None
    if isinstance(engine, EngineDefaults):
        inner, default = engine.inner, engine.language
    if isinstance(inner, WhisperSpeechEngine):
        return BatchedWhisperPasses(inner, default_language=default)
    return EnginePasses(engine)


# ----- stream time ----------------------------------------------------------------------------------


def shifted(
    segments: list[RecognizedSegment], offset_ms: int, limit_ms: int | None
) -> list[RecognizedSegment]:
    """Move segment times by ``offset_ms``, never past ``limit_ms`` (the audio received); empty
    segments dropped."""

    def at(ms: int) -> int:
        moved = ms + offset_ms
        return moved if limit_ms is None else min(moved, max(limit_ms, offset_ms))

    return [
        RecognizedSegment(
            start_ms=at(segment.start_ms),
            end_ms=max(at(segment.end_ms), at(segment.start_ms)),
            text=segment.text,
            words=[
                RecognizedWord(
                    start_ms=at(w.start_ms),
                    end_ms=max(at(w.end_ms), at(w.start_ms)),
                    text=w.text,
                    probability=w.probability,
                )
                for w in segment.words
            ],
        )
        for segment in segments
        if segment.text.strip()
    ]

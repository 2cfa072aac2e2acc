"""Whisper on many short chunks at once: each chunk encoded at its own length, decoded in batches.

faster-whisper hands CTranslate2 a 30 s window whatever the audio holds: a 4 s utterance pays for
30 s of encoder (0.44 s on 2 cores, against 0.034 s for the 4 s alone), and one stream's pass for
a second of speech costs as much as a file's half-minute. This module feeds the encoder only the
chunk (plus a little silence, rounded to a size class so that chunks batch together) and decodes
the chunks of a batch in one ``generate`` call, which on a CPU costs per chunk a third to a half of
decoding them one by one (a decoder step is a matrix-vector product; a batch makes it a product of
matrices). Word times come from the same cross-attention alignment faster-whisper uses.

Decoding is greedy (or a beam, ``beam_size``), without the temperature fallback and without the
previous chunk's text as a prompt unless the caller gives one: see ``whisper_engine`` for how the
fallback lost whole windows of repetitive speech.

Everything here runs on the caller's thread; CTranslate2 releases the GIL while it computes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from bucketscribe_local.speech import RecognizedSegment, RecognizedWord

if TYPE_CHECKING:
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

SAMPLE_RATE = 16_000
HOP = 160  # samples per feature frame (10 ms)
MAX_FRAMES = 3_000  # one Whisper window: 30 s
# Silence after the speech, so that Whisper hears the utterance end. A batch's chunks are padded
# to its longest (rounded up to half a second), which may be at most this much longer than a
# chunk's own input: the encoder's cost grows faster than its length.
TAIL_FRAMES = 50
PAD_STEP_FRAMES = 50
MAX_PADDING = 1.5
TIME_PER_TOKEN_S = 0.02  # a timestamp token and an encoder position are both 20 ms
# Whisper's own test for "this window was silence": a confident no-speech token and a poor text.
NO_SPEECH_PROBABILITY = 0.6
NO_SPEECH_LOGPROB = -1.0
# Whisper's threshold for a failed decoding (its ``log_prob_threshold``): a reading this poor a
# token is not one to keep a language for.
FAILED_READING = -1.0
# Tokens a decoding may produce: timestamps and text of the fastest speech (Chinese at about
# 6 characters a second) fit; a repetition loop stops there instead of at 448.
MIN_TOKENS = 16
MAX_TOKENS_PER_S = 12
# Choosing a language: a window of at least 10 s (shorter ones mislead Whisper more, longer ones
# cost more: 0.07 s against 0.44 s for 30 s on 2 cores); near-certain from this probability on;
# otherwise up to three candidates of at least 5 %, each read on up to 15 s of the speech.
DETECTION_FRAMES = 1_000
CONFIDENT_LANGUAGE = 0.9
LANGUAGE_CANDIDATES = 3
MIN_CANDIDATE = 0.05
CANDIDATE_DECODE_FRAMES = 1_500
# Speech this long without a word nearby (as the coverage check reaches: 300 ms) sends a chunk
# through a second pass in a full window (see ``_retry_holes``).
RETRY_HOLE_MS = 2_000
RETRY_PIECE_MS = 10_000
WORD_REACH_MS = 300
LATE_START_S = 0.1
SQUEEZED_ENDING_S = 1.0
PREPEND_PUNCTUATION = "\"'“¿([{-"
APPEND_PUNCTUATION = "\"'.。,，!！?？:：”)]}、"
SENTENCE_END_MARKS = ".。!！?？"

Task = Literal["transcribe", "translate"]


@dataclass(frozen=True)
class DecodeChunk:
    """One stretch of speech to decode (at most 30 s of 16 kHz float samples).

    ``offset_ms`` places it in the caller's time (the recording's, or the stream's). With no
    ``language`` the chunk's own audio decides it. ``prompt`` is earlier text of the same speaker,
    given to Whisper as context.
    """

    samples: np.ndarray
    offset_ms: int = 0
    language: str | None = None
    task: Task = "transcribe"
    prompt: str | None = None
    word_timestamps: bool = True
    speech: tuple[tuple[int, int], ...] | None = None
    """Where in the chunk (ms from its start) voice activity heard speech; None: all of it."""


@dataclass(frozen=True)
class DecodedChunk:
    segments: list[RecognizedSegment]
    language: str
    language_probability: float | None
    no_speech_probability: float
    avg_logprob: float
    sum_logprob: float = 0.0
    """The log-probability of the whole text (its tokens and the end token) given the language."""
    silent: bool = False
    """Whisper heard no speech (its no-speech test): ``segments`` is empty."""


@dataclass(frozen=True)
class LanguageChoice:
    language: str
    probability: float
    """Whisper's probability for it (from its language token)."""
    candidates: dict[str, float]
    decoded: bool
    """Whether the speech was decoded in each candidate to choose (not one near-certain)."""


@dataclass
class _Item:
    index: int
    chunk: DecodeChunk
    features: np.ndarray
    frames: int  # of the chunk's own audio
    silence: float  # the feature value of silence after it
    language: str | None = None
    language_probability: float | None = None
    tokenizer: Tokenizer | None = None
    tokens: list[int] = field(default_factory=list)
    no_speech_probability: float = 0.0
    avg_logprob: float = 0.0
    sum_logprob: float = 0.0


class WhisperBatchDecoder:
    """Decodes ``DecodeChunk`` lists with one loaded faster-whisper model (thread-safe: no state)."""

    def __init__(
        self, model: WhisperModel, *, beam_size: int = 1, max_batch: int = 8, workers: int = 1
    ) -> None:
        self.model = model
        self.beam_size = beam_size
        self.max_batch = max_batch
        self.workers = workers

    # ----- public ----------------------------------------------------------------------------------

    def decode(
        self, chunks: Sequence[DecodeChunk], *, on_batch: Callable[[int], None] | None = None
    ) -> list[DecodedChunk]:
        """Decode every chunk; results in the order given. Chunks of similar length share batches
        (shortest first); ``on_batch(done_ms)`` hears how much audio is decoded after each."""
        items = [self._item(i, chunk) for i, chunk in enumerate(chunks)]
        results: list[DecodedChunk | None] = [None] * len(items)
        done_ms = 0
        for batch, decoded_batch in self._each_batch(_batches(items, self.max_batch)):
            for item, result in zip(batch, decoded_batch, strict=True):
                results[item.index] = result
                done_ms += item.frames * HOP * 1000 // SAMPLE_RATE
            if on_batch is not None:
                on_batch(done_ms)
        decoded = [r for r in results if r is not None]
        return self._retry_holes(chunks, decoded)

    def _each_batch(
        self, batches: list[list[_Item]], frames: int | None = None
    ) -> Iterator[tuple[list[_Item], list[DecodedChunk]]]:
        """Each batch with its results, as they finish: ``workers`` batches at a time (the model's
        replicas decode side by side), or one after the other."""
        if self.workers <= 1 or len(batches) <= 1:
            for batch in batches:
                yield batch, self._decode_batch(batch, frames)
            return
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="whisper-batch") as pool:
            futures = [(batch, pool.submit(self._decode_batch, batch, frames)) for batch in batches]
            for batch, future in futures:
                yield batch, future.result()

    def _retry_holes(self, chunks: Sequence[DecodeChunk], decoded: list[DecodedChunk]) -> list[DecodedChunk]:
        """Decode again each chunk whose text leaves speech without words: in pieces of at most
        ``RETRY_PIECE_MS`` (cut between its speech regions), each in a full 30 s window.

        Heard without the silence of a full window, Whisper sometimes sums up repetitive speech
        (a sentence read back five times comes out twice, as one segment, and stops); a short
        piece of it followed by the silence it was trained with is transcribed in full. The retry
        is kept where it leaves less speech without text.
        """
        holes = [_largest_hole_ms(chunk, result) for chunk, result in zip(chunks, decoded, strict=True)]
        pieces: list[tuple[int, DecodeChunk]] = []  # (the chunk's index, a piece of it)
        for index, chunk in enumerate(chunks):
            if holes[index] >= RETRY_HOLE_MS:
                pieces.extend((index, piece) for piece in _pieces(chunk))
        if not pieces:
            return decoded
        items = [self._item(i, piece) for i, (_, piece) in enumerate(pieces)]
        results: list[DecodedChunk | None] = [None] * len(items)
        for batch, decoded_batch in self._each_batch(_batches(items, self.max_batch), MAX_FRAMES):
            for item, result in zip(batch, decoded_batch, strict=True):
                results[item.index] = result
        for index in sorted({index for index, _ in pieces}):
            parts = [
                r for (owner, _), r in zip(pieces, results, strict=True) if owner == index and r is not None
            ]
            again = DecodedChunk(
                segments=[segment for part in parts for segment in part.segments],
                language=parts[0].language,
                language_probability=parts[0].language_probability,
                no_speech_probability=min(part.no_speech_probability for part in parts),
                avg_logprob=sum(part.avg_logprob for part in parts) / len(parts),
                sum_logprob=sum(part.sum_logprob for part in parts),
            )
            if _largest_hole_ms(chunks[index], again) < holes[index]:
                decoded[index] = again
        return decoded

    def detect_language(self, samples: np.ndarray, *, full_window: bool = True) -> list[tuple[str, float]]:
        """Whisper's language probabilities for up to 30 s of speech, most likely first.

        ``full_window`` pads the speech to 30 s as Whisper was trained (0.44 s on 2 cores);
        without it the encoder hears only the speech (0.03-0.1 s for a few seconds).
        """
        item = self._item(0, DecodeChunk(samples=samples))
        encoded = self._encode([item], MAX_FRAMES if full_window else _padded_frames(item.frames))
        return self._languages(encoded)[0]

    def choose_language(self, samples: np.ndarray) -> LanguageChoice:
        """The language of up to 30 s of one speaker's speech, chosen as Whisper reads it best.

        Whisper's language token alone is unreliable on a few seconds of speech: the bundled
        "Hello and welcome..." (espeak) is Finnish to it at p=0.80 in a 10 s window, English at
        0.48 in a 30 s one, and which one wins moves with the CPU's kernels. So unless one language
        is near certain (``CONFIDENT_LANGUAGE``), the speech is decoded in each likely language
        (the same encoder output, one batch), and a language whose reading fails is passed over
        (``best_reading``): Finnish reads that clip as "Lohan ja velkämmin" at -1.41 a token,
        English as what was said at -0.31.
        """
        window = samples[: MAX_FRAMES * HOP]
        candidates = self.language_candidates(window)
        if len(candidates) == 1:
            return LanguageChoice(candidates[0][0], candidates[0][1], dict(candidates), decoded=False)
        heard = window[: CANDIDATE_DECODE_FRAMES * HOP]
        readings = self.decode(
            [
                DecodeChunk(samples=heard, language=language, word_timestamps=False)
                for language, _ in candidates
            ]
        )
        return best_reading(candidates, readings)

    def language_candidates(
        self,
        samples: np.ndarray,
        *,
        most: int = LANGUAGE_CANDIDATES,
        least: float = MIN_CANDIDATE,
        window: bool = True,
    ) -> list[tuple[str, float]]:
        """The languages worth reading up to 30 s of speech in, with Whisper's probabilities: the
        one near-certain language (``CONFIDENT_LANGUAGE``), or up to ``most`` of at least
        ``least``. Heard in a window of at least 10 s (see ``choose_language``), or with
        ``window`` False the speech alone (a fifth of the cost for 3 s of speech, and as good a
        list to choose from when the readings decide)."""
        item = self._item(0, DecodeChunk(samples=samples[: MAX_FRAMES * HOP]))
        frames = _padded_frames(item.frames)
        encoded = self._encode([item], max(DETECTION_FRAMES, frames) if window else frames)
        detected = self._languages(encoded)[0]
        if detected[0][1] >= CONFIDENT_LANGUAGE:
            return [detected[0]]
        return [(language, p) for language, p in detected[:most] if p >= least]

    # ----- one batch -------------------------------------------------------------------------------

    def _item(self, index: int, chunk: DecodeChunk) -> _Item:
        import numpy as np

        samples = chunk.samples[: MAX_FRAMES * HOP]
        features = self.model.feature_extractor(samples)
        frames = _frames_of(chunk)
        kept = np.asarray(features[:, :frames])
        return _Item(index=index, chunk=chunk, features=kept, frames=frames, silence=float(kept.max()) - 2.0)

    def _encode(self, batch: Sequence[_Item], frames: int) -> Any:
        """The encoder output of a batch, every chunk padded with silence to ``frames``.

        Chunk by chunk, then stacked: on a CPU one encoder call per chunk is cheaper than one for
        the batch (measured 8 x 12.5 s: 1.27 s against 1.74 s on 2 cores); the decoder is where
        a batch pays.
        """
        import ctranslate2
        import numpy as np

        outputs: list[np.ndarray] = []
        done: dict[int, np.ndarray] = {}  # one encoding for the same audio read in several languages
        for item in batch:
            key = id(item.chunk.samples)
            if key not in done:
                # Silence, as the feature extractor would have computed it for zeros after the
                # audio: its floor is 8 (log10) below the loudest bin, which normalises to max - 2.
                padded = np.full((1, item.features.shape[0], frames), item.silence, dtype=np.float32)
                padded[0, :, : item.frames] = item.features[:, :frames]
                encoded = self.model.model.encode(ctranslate2.StorageView.from_array(padded), to_cpu=False)
                if len(batch) == 1:
                    return encoded
                done[key] = np.array(encoded, copy=True)  # a copy: the view dies with ``encoded``
            outputs.append(done[key])
        return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.concatenate(outputs)))

    def _languages(self, encoded: Any) -> list[list[tuple[str, float]]]:
        found = self.model.model.detect_language(encoded)
        return [[(token[2:-2], probability) for token, probability in item] for item in found]

    def _decode_batch(self, batch: list[_Item], frames: int | None = None) -> list[DecodedChunk]:
        """Decode one batch: padded to ``frames`` (a full window: the retry) with Whisper's
        timestamp tokens, else to its longest chunk without them."""
        timestamps = frames == MAX_FRAMES
        from faster_whisper.transcribe import get_suppressed_tokens

        frames = frames or _padded_frames(max(item.frames for item in batch))
        encoded = self._encode(batch, frames)
        undecided = [i for i, item in enumerate(batch) if not item.chunk.language]
        if undecided:
            detected = self._languages(encoded)
            for i in undecided:
                batch[i].language, batch[i].language_probability = detected[i][0]
        for item in batch:
            if item.chunk.language:
                item.language = self._checked_language(item.chunk.language)
        tokenizers = [self._tokenizer(item) for item in batch]
        for item, tokenizer in zip(batch, tokenizers, strict=True):
            item.tokenizer = tokenizer
        prompts = [
            self._prompt(tokenizer, item.chunk.prompt, timestamps=timestamps)
            for tokenizer, item in zip(tokenizers, batch, strict=True)
        ]
        # One generate call per prompt length: CTranslate2 decodes a batch from equal-length prompts.
        by_length: dict[int, list[int]] = {}
        for i, prompt in enumerate(prompts):
            by_length.setdefault(len(prompt), []).append(i)
        for rows in by_length.values():
            part = encoded if len(rows) == len(batch) else _rows(encoded, rows)
            results = self.model.model.generate(
                part,
                [prompts[i] for i in rows],
                beam_size=self.beam_size,
                max_length=_max_length(
                    self.model.max_length, len(prompts[rows[0]]), [batch[i] for i in rows]
                ),
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
                suppress_tokens=get_suppressed_tokens(tokenizers[rows[0]], [-1]),
                max_initial_timestamp_index=50,  # the first word starts within 1 s, as Whisper's default
            )
            for i, result in zip(rows, results, strict=True):
                tokens = list(result.sequences_ids[0])
                batch[i].tokens = tokens
                batch[i].no_speech_probability = float(result.no_speech_prob)
                # avg log-probability over the tokens and the end token, as Whisper computes it
                # CTranslate2 scores a sequence by its log-probability over its length; Whisper's
                # average counts the end token as well.
                batch[i].sum_logprob = float(result.scores[0]) * max(len(tokens), 1)
                batch[i].avg_logprob = batch[i].sum_logprob / (len(tokens) + 1)
        segments = [
            self._segments(tokenizer, item) for tokenizer, item in zip(tokenizers, batch, strict=True)
        ]
        timed = [i for i, item in enumerate(batch) if item.chunk.word_timestamps and segments[i]]
        # Alignment needs one tokenizer per call (the language's start-of-transcript sequence).
        by_tokenizer: dict[tuple[str | None, str], list[int]] = {}
        for i in timed:
            by_tokenizer.setdefault((batch[i].language, batch[i].chunk.task), []).append(i)
        for rows in by_tokenizer.values():
            part = encoded if len(rows) == len(batch) else _rows(encoded, rows)
            self._add_word_times(
                tokenizers[rows[0]], part, [batch[i] for i in rows], [segments[i] for i in rows]
            )
        return [_result(item, item_segments) for item, item_segments in zip(batch, segments, strict=True)]

    def _checked_language(self, language: str) -> str:
        if language not in self.model.supported_languages:
            raise ValueError(f"language {language!r} is not one the Whisper model knows")
        return language

    def _tokenizer(self, item: _Item) -> Tokenizer:
        from faster_whisper.tokenizer import Tokenizer

        return Tokenizer(
            self.model.hf_tokenizer,
            self.model.model.is_multilingual,
            task=item.chunk.task,
            language=item.language or "en",
        )

    def _prompt(self, tokenizer: Tokenizer, text: str | None, *, timestamps: bool = False) -> list[int]:
        previous = tokenizer.encode(" " + text.strip()) if text and text.strip() else []
        # Without timestamp tokens: on the 10-minute bench clip WER 0.071 against 0.078 with them,
        # at the same speed; segments are cut at sentence ends from the word times instead. The
        # retry of a chunk that left speech without words keeps them: in a full window, with
        # timestamps, Whisper writes out every repetition of a sentence read back five times.
        return list(
            self.model.get_prompt(
                tokenizer, previous[-(self.model.max_length // 2 - 1) :], without_timestamps=not timestamps
            )
        )

    def _segments(self, tokenizer: Tokenizer, item: _Item) -> list[dict[str, Any]]:
        """The decoded tokens as segments, in seconds from the chunk's start: cut at Whisper's
        timestamp pairs where there are any (decoded without them, the text is one segment until
        the word times cut it into sentences: ``_sentences``)."""
        if _silent(item):
            return []
        tokens = item.tokens
        duration_s = item.frames * HOP / SAMPLE_RATE
        begin = tokenizer.timestamp_begin
        segments: list[dict[str, Any]] = []
        start_s: float | None = None
        text_tokens: list[int] = []
        for token in tokens:
            if token < begin:
                if token < tokenizer.eot:
                    text_tokens.append(token)
                continue
            at = (token - begin) * TIME_PER_TOKEN_S
            if start_s is None:
                start_s = at
            elif text_tokens:
                segments.append({"start": start_s, "end": max(at, start_s), "tokens": text_tokens})
                start_s, text_tokens = None, []
            else:
                start_s = at  # two timestamps in a row: the second opens the next segment
        if text_tokens:  # an unfinished segment (no closing timestamp): it runs to the chunk's end
            segments.append({"start": start_s or 0.0, "end": duration_s, "tokens": text_tokens})
        # A segment that starts in the silence after the chunk's audio is Whisper going on with a
        # pattern it heard (a repeated sentence once more): there was nothing there to hear.
        return [
            {**s, "end": min(s["end"], duration_s)}
            for s in segments
            if s["start"] < duration_s - LATE_START_S and tokenizer.decode(s["tokens"]).strip()
        ]

    def _add_word_times(
        self, tokenizer: Tokenizer, encoded: Any, items: list[_Item], segments: list[list[dict[str, Any]]]
    ) -> None:
        text_tokens = [[t for s in item_segments for t in s["tokens"]] for item_segments in segments]
        alignments = self.model.model.align(
            encoded,
            tokenizer.sot_sequence,
            text_tokens,
            [item.frames for item in items],
            median_filter_width=7,
        )
        for item, item_segments, tokens, alignment in zip(
            items, segments, text_tokens, alignments, strict=True
        ):
            words = _aligned_words(tokenizer, tokens, alignment)
            _share_words(item_segments, words)
            item_segments[:] = _sentences(item_segments)
            _drop_squeezed_ending(item_segments, item.frames * HOP / SAMPLE_RATE)


def best_reading(candidates: Sequence[tuple[str, float]], readings: Sequence[DecodedChunk]) -> LanguageChoice:
    """Of one speech read in each candidate language (likeliest first), the language to keep.

    Whisper's likeliest language, unless its reading failed by Whisper's own measure (an average
    log-probability under -1 a token, where its decoder falls back): then the likeliest whose
    reading did not, and if every reading failed the most probable one (language probability
    times the probability of the whole text). The text's probability alone does not decide: a
    language close to the one spoken reads it almost as well, Latin for an 8 kHz English call
    (-44.0 against -48.9 for English over 15 s), and would win where Whisper said English at 0.77.
    """
    import numpy as np

    order = sorted(range(len(candidates)), key=lambda i: -candidates[i][1])
    fine = [i for i in order if readings[i].avg_logprob >= FAILED_READING]
    if fine:
        best = fine[0]
    else:
        scores = [
            float(np.log(max(p, 1e-9))) + reading.sum_logprob
            for (_, p), reading in zip(candidates, readings, strict=True)
        ]
        best = max(range(len(candidates)), key=lambda i: scores[i])
    language, probability = candidates[best]
    return LanguageChoice(language, probability, dict(candidates), decoded=True)


# ----- batching ----------------------------------------------------------------------------------


def _padded_frames(frames: int) -> int:
    """The encoder input for ``frames`` of audio: a tail of silence, rounded up to half a second."""
    return min(math.ceil((frames + TAIL_FRAMES) / PAD_STEP_FRAMES) * PAD_STEP_FRAMES, MAX_FRAMES)


def _batches(items: list[_Item], max_batch: int) -> list[list[_Item]]:
    """Items in batches of up to ``max_batch``, shortest first, and none padded to more than
    ``MAX_PADDING`` times its own encoder length: a short chunk does not pay for a long one's."""
    ordered = sorted(items, key=lambda item: item.frames)
    batches: list[list[_Item]] = []
    for item in ordered:
        if (
            batches
            and len(batches[-1]) < max_batch
            and _padded_frames(item.frames) <= MAX_PADDING * _padded_frames(batches[-1][0].frames)
        ):
            batches[-1].append(item)
        else:
            batches.append([item])
    return batches


def _max_length(model_limit: int, prompt_length: int, items: Sequence[_Item]) -> int:
    """A decoding's length limit: the model's, or what the longest chunk could hold (speech is
    at most about 8 tokens a second; a repetition loop runs on to the limit, so this is also
    what a loop costs)."""
    seconds = max(item.frames for item in items) * HOP / SAMPLE_RATE
    return min(model_limit, prompt_length + MIN_TOKENS + math.ceil(seconds * MAX_TOKENS_PER_S))


def _pieces(chunk: DecodeChunk) -> list[DecodeChunk]:
    """A chunk cut between its speech regions into pieces of at most ``RETRY_PIECE_MS`` (a region
    longer than that is a piece of its own)."""
    length = _frames_of(chunk) * HOP * 1000 // SAMPLE_RATE
    regions = sorted(chunk.speech) if chunk.speech else [(0, length)]
    spans: list[tuple[int, int]] = []
    for start, end in regions:
        if spans and end - spans[-1][0] <= RETRY_PIECE_MS:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    # Each piece runs from its first region to the next piece's (the pause goes with it).
    edges = [*(start for start, _ in spans[1:]), length]
    return [
        DecodeChunk(
            samples=chunk.samples[start * SAMPLE_RATE // 1000 : edge * SAMPLE_RATE // 1000],
            offset_ms=chunk.offset_ms + start,
            language=chunk.language,
            task=chunk.task,
            prompt=chunk.prompt,
            word_timestamps=chunk.word_timestamps,
            speech=tuple(
                (max(s, start) - start, min(e, edge) - start) for s, e in regions if s < edge and e > start
            ),
        )
        for (start, _), edge in zip(spans, edges, strict=True)
    ]


def _frames_of(chunk: DecodeChunk) -> int:
    return min(max(math.ceil(len(chunk.samples) / HOP), 1), MAX_FRAMES)


def _largest_hole_ms(chunk: DecodeChunk, result: DecodedChunk) -> int:
    """The longest stretch of the chunk's speech with no word within ``WORD_REACH_MS``."""
    from bucketscribe.domain.coverage import subtract, union

    length = _frames_of(chunk) * HOP * 1000 // SAMPLE_RATE
    speech = union(chunk.speech if chunk.speech is not None else [(0, length)])
    offset = chunk.offset_ms
    text = union(
        (max(start - offset - WORD_REACH_MS, 0), end - offset + WORD_REACH_MS)
        for segment in result.segments
        for start, end in (
            [(w.start_ms, w.end_ms) for w in segment.words] or [(segment.start_ms, segment.end_ms)]
        )
    )
    return max((end - start for start, end in subtract(speech, text)), default=0)


def _rows(encoded: Any, rows: list[int]) -> Any:
    import ctranslate2
    import numpy as np

    return ctranslate2.StorageView.from_array(np.ascontiguousarray(np.asarray(encoded)[rows]))


def _silent(item: _Item) -> bool:
    return item.no_speech_probability > NO_SPEECH_PROBABILITY and item.avg_logprob < NO_SPEECH_LOGPROB


# ----- words -------------------------------------------------------------------------------------


def _aligned_words(tokenizer: Tokenizer, tokens: list[int], alignment: Any) -> list[dict[str, Any]]:
    """Words with start/end (s, chunk time) and probability, from a CTranslate2 alignment."""
    import numpy as np

    if not tokens:
        return []
    words, word_tokens = tokenizer.split_to_word_tokens([*tokens, tokenizer.eot])
    if len(word_tokens) <= 1:
        return []
    pairs = alignment.alignments
    text_indices = np.array([pair[0] for pair in pairs])
    time_indices = np.array([pair[1] for pair in pairs])
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] * TIME_PER_TOKEN_S
    if len(jump_times) < len(boundaries):
        return []
    probabilities = alignment.text_token_probs
    aligned = [
        {
            "word": word,
            "tokens": wt,
            "start": float(jump_times[b0]),
            "end": float(jump_times[b1]),
            "probability": float(np.mean(probabilities[b0:b1])) if b1 > b0 else 0.0,
        }
        for word, wt, b0, b1 in zip(
            words[:-1], word_tokens[:-1], boundaries[:-1], boundaries[1:], strict=True
        )
    ]
    _limit_long_words(aligned)
    return _merged_punctuation(aligned)


def _limit_long_words(words: list[dict[str, Any]]) -> None:
    """Whisper's fix for words stretched over a pause: next to a sentence end, no word lasts more
    than twice the median word (the attention of a full stop smears over the silence after it)."""
    import numpy as np

    durations = np.array([w["end"] - w["start"] for w in words])
    durations = durations[durations.nonzero()]
    if len(durations) == 0:
        return
    longest = min(0.7, float(np.median(durations))) * 2
    for i in range(1, len(words)):
        if words[i]["end"] - words[i]["start"] > longest:
            if words[i]["word"].strip() in SENTENCE_END_MARKS:
                words[i]["end"] = words[i]["start"] + longest
            elif words[i - 1]["word"].strip() in SENTENCE_END_MARKS:
                words[i]["start"] = words[i]["end"] - longest


def _merged_punctuation(words: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Opening punctuation joins the next word, closing punctuation the previous one (tokens too:
    words are handed to segments by their token counts)."""
    merged: list[dict[str, Any]] = []
    pending: dict[str, Any] | None = None
    for word in words:
        text = word["word"]
        if text.startswith(" ") and text.strip() and text.strip() in PREPEND_PUNCTUATION:
            pending = word if pending is None else _joined(pending, word, timing=pending)
            continue
        if pending is not None:
            word, pending = _joined(pending, word, timing=word), None
            text = word["word"]
        if merged and not merged[-1]["word"].endswith(" ") and text and text in APPEND_PUNCTUATION:
            merged[-1] = _joined(merged[-1], word, timing=merged[-1])
            merged[-1]["end"] = word["end"]
            continue
        merged.append(word)
    if pending is not None:
        merged.append(pending)
    return merged


def _joined(first: dict[str, Any], second: dict[str, Any], *, timing: dict[str, Any]) -> dict[str, Any]:
    return {**timing, "word": first["word"] + second["word"], "tokens": first["tokens"] + second["tokens"]}


def _share_words(segments: list[dict[str, Any]], words: list[dict[str, Any]]) -> None:
    """Hand each segment its words in order (by token count), and fit its times to them."""
    index = 0
    for segment in segments:
        count = len(segment["tokens"])
        taken = 0
        mine: list[dict[str, Any]] = []
        while index < len(words) and taken < count:
            taken += len(words[index]["tokens"])
            if words[index]["word"].strip():
                mine.append(words[index])
            index += 1
        segment["words"] = mine
        if mine:
            segment["start"], segment["end"] = mine[0]["start"], max(mine[-1]["end"], mine[0]["start"])


def _sentences(segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Segments cut after every word that ends a sentence (. ? ! and their CJK forms)."""
    cut: list[dict[str, Any]] = []
    for segment in segments:
        words = segment.get("words") or []
        if not words:
            cut.append(segment)
            continue
        sentence: list[dict[str, Any]] = []
        for index, word in enumerate(words):
            sentence.append(word)
            text = word["word"].strip()
            if index == len(words) - 1 or (text and text[-1] in SENTENCE_END_MARKS):
                cut.append(
                    {
                        "start": sentence[0]["start"],
                        "end": max(sentence[-1]["end"], sentence[0]["start"]),
                        "tokens": [t for w in sentence for t in w["tokens"]],
                        "words": sentence,
                    }
                )
                sentence = []
    return cut


def _drop_squeezed_ending(segments: list[dict[str, Any]], duration_s: float) -> None:
    """Drop the last segments while their words are squeezed into the chunk's end: Whisper went on
    with a sentence it had heard (a repetition once more, or twice) where the audio had nothing
    left. The test is Whisper's own "word anomaly" score (faster-whisper's
    ``hallucination_silence_threshold``): improbable, very short or very long words."""
    while segments and segments[-1]["start"] >= duration_s - SQUEEZED_ENDING_S:
        words = [w for w in segments[-1].get("words", []) if w["word"].strip() not in APPEND_PUNCTUATION][:8]
        score = sum(_anomaly(w) for w in words)
        if not words or (score < 3 and score + 0.01 < len(words)):
            return
        segments.pop()


def _anomaly(word: dict[str, Any]) -> float:
    duration = word["end"] - word["start"]
    score = 1.0 if word["probability"] < 0.15 else 0.0
    if duration < 0.133:
        score += (0.133 - duration) * 15
    if duration > 2.0:
        score += duration - 2.0
    return score


def _result(item: _Item, segments: list[dict[str, Any]]) -> DecodedChunk:
    return DecodedChunk(
        segments=[_recognized(item, s) for s in segments],
        language=item.language or "en",
        language_probability=item.language_probability,
        no_speech_probability=item.no_speech_probability,
        avg_logprob=item.avg_logprob,
        sum_logprob=item.sum_logprob,
        silent=_silent(item),
    )


def _recognized(item: _Item, segment: dict[str, Any]) -> RecognizedSegment:
    """A segment in the caller's time, never outside the chunk's audio."""
    assert item.tokenizer is not None
    offset = item.chunk.offset_ms
    limit = offset + item.frames * HOP * 1000 // SAMPLE_RATE

    def at(seconds: float) -> int:
        return min(max(offset + round(seconds * 1000), offset), limit)

    start = at(segment["start"])
    words = [
        RecognizedWord(
            start_ms=max(at(w["start"]), start),
            end_ms=max(at(w["end"]), at(w["start"]), start),
            text=w["word"].strip(),
            probability=w["probability"],
        )
        for w in segment.get("words", [])
        if w["word"].strip()
    ]
    return RecognizedSegment(
        start_ms=start,
        end_ms=max(at(segment["end"]), start),
        text=item.tokenizer.decode(segment["tokens"]).strip(),
        words=words,
    )

"""How the real-time streams' passes are scheduled and batched (``local/stream_decoding.py``).

The Whisper decoder is replaced by ``GatedDecoder``, which records every batch and can hold one
while the test submits more, so that what the next batch holds is decided by the scheduler's
rules alone (no clock, no race): the test waits, with a deadline, for the worker to be inside the
held batch before it submits the rest.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

import numpy as np
import pytest
from bucketscribe_local.batch_decoder import DecodeChunk, DecodedChunk
from bucketscribe_local.speech import RecognizedSegment
from bucketscribe_local.stream_decoding import BatchedWhisperPasses, PassResult, StreamPass

from tests.waiting import wait_until

pytestmark = pytest.mark.unit

WAIT_S = 10.0
RATE = 16000


class GatedDecoder:
    """Answers each chunk with one segment naming its stream's first sample value, language and task."""

    def __init__(self, *, hold_first: bool = False, fail_on: str | None = None) -> None:
        self.batches: list[list[DecodeChunk]] = []
        self.decisions: list[int] = []
        self.inside = threading.Event()
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        self.fail_on = fail_on

    def decode(self, chunks: list[DecodeChunk], **_: Any) -> list[DecodedChunk]:
        self.batches.append(list(chunks))
        self.inside.set()
        assert self.release.wait(WAIT_S), "the test never released the held batch"
        results = []
        for chunk in chunks:
            name = _name(chunk.samples)
            if name == self.fail_on:
                raise RuntimeError(f"cannot decode {name}")
            text = f"{name} {chunk.language} {chunk.task}"
            end = chunk.offset_ms + len(chunk.samples) * 1000 // RATE
            segment = RecognizedSegment(start_ms=chunk.offset_ms, end_ms=end, text=text)
            results.append(
                DecodedChunk(
                    segments=[segment],
                    language=chunk.language or "xx",
                    language_probability=None,
                    no_speech_probability=0.0,
                    # Read as French this audio fails (Whisper's -1 a token); as German it does not.
                    avg_logprob={"fr": -1.5}.get(chunk.language or "", -0.1),
                    sum_logprob={"de": -1.0, "fr": -9.0}.get(chunk.language or "", -3.0),
                )
            )
        return results

    def language_candidates(self, samples: np.ndarray, **_: Any) -> list[tuple[str, float]]:
        self.decisions.append(len(samples))
        return [("fr", 0.6), ("de", 0.3)]  # Whisper's token says French; the readings decide


def _name(samples: np.ndarray) -> str:
    return f"s{round(float(samples[0]) * 32768)}"


def pcm(stream_number: int, seconds: float = 1.0) -> bytes:
    """Audio whose first sample says which stream it is (the decoder above reads it back)."""
    samples = np.full(int(seconds * RATE), stream_number, dtype="<i2")
    return samples.tobytes()


def work(stream: int, *, final: bool, language: str | None = "en", **extra: Any) -> StreamPass:
    return StreamPass(
        stream=f"task-{stream}",
        audio=pcm(stream),
        sample_rate=RATE,
        start_ms=1000,
        final=final,
        language=language,
        **extra,
    )


def passes(decoder: GatedDecoder, max_batch: int = 8) -> BatchedWhisperPasses:
    return BatchedWhisperPasses(object(), max_batch=max_batch, decoder_factory=lambda: decoder)  # type: ignore[arg-type, return-value]


def result(future: Future[PassResult]) -> PassResult:
    return future.result(timeout=WAIT_S)


def batch_names(decoder: GatedDecoder) -> list[list[str]]:
    return [[_name(chunk.samples) for chunk in batch] for batch in decoder.batches]


def test_what_waits_while_a_batch_runs_is_the_next_batch_finals_first_then_interims_by_turn() -> None:
    decoder = GatedDecoder(hold_first=True)
    scheduler = passes(decoder, max_batch=3)
    first = scheduler.submit(work(1, final=False))
    assert decoder.inside.wait(WAIT_S)
    waiting = [
        scheduler.submit(work(2, final=False)),
        scheduler.submit(work(1, final=False)),  # stream 1 was just served: it waits its turn
        scheduler.submit(work(3, final=True)),
        scheduler.submit(work(4, final=True)),
    ]
    decoder.release.set()

    assert [result(f).segments[0].text for f in [first, *waiting]] == [
        "s1 en transcribe",
        "s2 en transcribe",
        "s1 en transcribe",
        "s3 en transcribe",
        "s4 en transcribe",
    ]
    assert batch_names(decoder) == [["s1"], ["s3", "s4", "s2"], ["s1"]]
    assert scheduler.counters.batches == 3 and scheduler.counters.largest_batch == 3
    scheduler.close()


def test_a_translation_into_another_language_joins_its_transcription_in_the_same_batch() -> None:
    decoder = GatedDecoder()
    scheduler = passes(decoder)

    german = result(scheduler.submit(work(5, final=True, language="de", translate_to="en")))
    english = result(scheduler.submit(work(6, final=True, language="en", translate_to="en")))

    assert [(c.task, c.language) for c in decoder.batches[0]] == [("transcribe", "de"), ("translate", "de")]
    assert [s.text for s in german.segments] == ["s5 de transcribe"]
    assert german.translated is not None and [s.text for s in german.translated] == ["s5 de translate"]
    # Spoken in the target language: one reading, and no translation of its own (the text is it).
    assert [c.task for c in decoder.batches[1]] == ["transcribe"]
    assert english.translated is None
    scheduler.close()


def test_a_pass_that_decides_the_language_reads_its_audio_in_each_likely_one_in_the_same_batch() -> None:
    decoder = GatedDecoder()
    scheduler = passes(decoder)
    evidence = pcm(7, seconds=4.0)

    deciding = work(7, final=True, language=None, decide_language=True, evidence=evidence, translate_to="en")
    decided = result(scheduler.submit(deciding))

    assert decoder.decisions == [4 * RATE]  # the probabilities come from the stream's speech so far
    assert decided.language == "de" and decided.decided  # French, likelier, read as a failure
    assert [s.text for s in decided.segments] == ["s7 de transcribe"]
    assert [(c.language, c.task) for c in decoder.batches[0]] == [("fr", "transcribe"), ("de", "transcribe")]
    # The translation of the decided language follows in a batch of its own.
    assert [(c.language, c.task) for c in decoder.batches[1]] == [("de", "translate")]
    assert decided.translated is not None and [s.text for s in decided.translated] == ["s7 de translate"]
    scheduler.close()


def test_interim_passes_need_no_word_timings_and_finals_keep_them() -> None:
    decoder = GatedDecoder()
    scheduler = passes(decoder)
    result(scheduler.submit(work(1, final=False)))
    result(scheduler.submit(work(1, final=True)))
    assert [batch[0].word_timestamps for batch in decoder.batches] == [False, True]
    scheduler.close()


def test_a_failed_batch_fails_its_passes_and_the_next_batch_still_runs() -> None:
    decoder = GatedDecoder(fail_on="s9")
    scheduler = passes(decoder)
    with pytest.raises(RuntimeError, match="cannot decode s9"):
        result(scheduler.submit(work(9, final=True)))
    assert [s.text for s in result(scheduler.submit(work(2, final=True))).segments] == ["s2 en transcribe"]
    scheduler.close()


def test_closing_cancels_what_waits_and_refuses_what_comes() -> None:
    decoder = GatedDecoder(hold_first=True)
    scheduler = passes(decoder)
    running = scheduler.submit(work(1, final=True))
    assert decoder.inside.wait(WAIT_S)
    queued = scheduler.submit(work(2, final=True))

    scheduler.close()
    decoder.release.set()

    assert queued.cancelled()
    assert [s.text for s in result(running).segments] == ["s1 en transcribe"]
    with pytest.raises(RuntimeError, match="closed"):
        result(scheduler.submit(work(3, final=True)))


def test_the_language_list_known_without_faster_whisper_is_faster_whispers() -> None:
    from bucketscribe_local.whisper_engine import WHISPER_LANGUAGES, whisper_language_code
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert frozenset(_LANGUAGE_CODES) == WHISPER_LANGUAGES
    assert [whisper_language_code(c) for c in ("en-US", "zh_cn", "DE", "tlh")] == ["en", "zh", "de", None]


class MeetingDecoder(GatedDecoder):
    """Each batch waits at a two-party barrier: two batches pass only if they run at once."""

    def __init__(self) -> None:
        super().__init__()
        self.meeting = threading.Barrier(2, timeout=WAIT_S)

    def decode(self, chunks: list[DecodeChunk], **options: Any) -> list[DecodedChunk]:
        self.meeting.wait()
        return super().decode(chunks, **options)


def test_two_workers_decode_two_batches_side_by_side() -> None:
    decoder = MeetingDecoder()
    scheduler = BatchedWhisperPasses(object(), workers=2, decoder_factory=lambda: decoder)  # type: ignore[arg-type, return-value]
    # The first batch waits at the barrier for a second one: only another worker can bring it.
    first = scheduler.submit(work(1, final=True))
    wait_until(lambda: decoder.meeting.n_waiting == 1, timeout_s=WAIT_S, what="the first batch to start")
    second = scheduler.submit(work(2, final=True))
    assert [s.text for s in result(first).segments] == ["s1 en transcribe"]
    assert [s.text for s in result(second).segments] == ["s2 en transcribe"]
    scheduler.close()


def test_routine_interims_leave_one_worker_free_for_finals() -> None:
    decoder = GatedDecoder(hold_first=True)
    scheduler = BatchedWhisperPasses(object(), workers=2, decoder_factory=lambda: decoder)  # type: ignore[arg-type, return-value]
    first = scheduler.submit(work(1, final=False))
    assert decoder.inside.wait(WAIT_S)
    assert not scheduler.has_room()  # a second routine interim would take the last free worker
    interim = scheduler.submit(work(2, final=False))
    final = scheduler.submit(work(3, final=True))
    wait_until(lambda: len(decoder.batches) == 2, timeout_s=WAIT_S, what="the final's batch")
    decoder.release.set()

    assert batch_names(decoder)[:2] == [["s1"], ["s3"]]  # the free worker took the final, not the interim
    assert [result(f).segments[0].text for f in (first, interim, final)] == [
        "s1 en transcribe",
        "s2 en transcribe",
        "s3 en transcribe",
    ]
    scheduler.close()


def test_a_streams_first_interim_is_due_like_a_final() -> None:
    decoder = GatedDecoder(hold_first=True)
    scheduler = BatchedWhisperPasses(object(), workers=2, decoder_factory=lambda: decoder)  # type: ignore[arg-type, return-value]
    scheduler.submit(work(1, final=False))
    assert decoder.inside.wait(WAIT_S)
    first_package = scheduler.submit(work(2, final=False, first=True))
    wait_until(lambda: len(decoder.batches) == 2, timeout_s=WAIT_S, what="the first package's batch")
    decoder.release.set()
    assert [s.text for s in result(first_package).segments] == ["s2 en transcribe"]
    scheduler.close()

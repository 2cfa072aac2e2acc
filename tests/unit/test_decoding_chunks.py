"""How the local engine cuts voice activity into chunks for the decoder (no model loaded)."""

from __future__ import annotations

import pytest
from bucketscribe_local.whisper_engine import WINDOW_MS, decoding_chunks

from bucketscribe.domain.coverage import SpeechSpan

pytestmark = pytest.mark.unit


def spans(*edges: tuple[int, int]) -> list[SpeechSpan]:
    return [SpeechSpan(start_ms=s, end_ms=e) for s, e in edges]


def test_utterances_are_joined_up_to_one_window_and_cut_between_them() -> None:
    # A 10 s message with a 1 s pause, eight times: two per 30 s window (a third would not fit),
    # never cut mid-message.
    loop = spans(*((i * 11_000, i * 11_000 + 10_000) for i in range(8)))

    chunks = decoding_chunks(loop)

    assert chunks == [(0, 21_000), (22_000, 43_000), (44_000, 65_000), (66_000, 87_000)]
    assert all(end - start <= WINDOW_MS for start, end in chunks)


def test_a_chunk_spans_from_its_first_utterance_to_its_last_including_the_pauses() -> None:
    assert decoding_chunks(spans((1_000, 3_000), (20_000, 29_000), (29_500, 31_500))) == [
        (1_000, 29_000),
        (29_500, 31_500),
    ]


def test_unsorted_or_overlapping_regions_and_no_speech() -> None:
    assert decoding_chunks(spans((5_000, 8_000), (0, 6_000))) == [(0, 8_000)]
    assert decoding_chunks([]) == []


def test_a_region_longer_than_the_limit_stays_whole() -> None:
    assert decoding_chunks(spans((0, 40_000), (40_500, 41_000)), max_ms=30_000) == [
        (0, 40_000),
        (40_500, 41_000),
    ]

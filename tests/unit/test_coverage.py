"""Coverage: detected speech against the text that accounts for it (bucketscribe.domain.coverage)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bucketscribe.domain.coverage import (
    LONG_GAP_WITHOUT_TEXT,
    SPEECH_WITHOUT_TEXT,
    CoverageRules,
    SpeechSpan,
    check_reported_speech,
    check_text_gaps,
    check_voice_activity,
    subtract,
    union,
    with_coverage,
)
from bucketscribe.domain.transcript import CoverageBasis, Segment, Transcript, TranscriptWarning, Word
from bucketscribe.providers.dashscope.result import (
    DashScopeTranscription,
    reported_speech_ms,
    transcript_from_dashscope,
)
from bucketscribe.render import render

pytestmark = pytest.mark.unit

EXACT = CoverageRules(word_reach_ms=0, min_hole_ms=2_000)


def said(start_ms: int, end_ms: int, text: str = "words here", *, channel: int | None = None) -> Segment:
    """A segment whose words evenly fill its span."""
    tokens = text.split()
    step = (end_ms - start_ms) // len(tokens)
    words = [
        Word(start_ms=start_ms + i * step, end_ms=start_ms + (i + 1) * step, text=token)
        for i, token in enumerate(tokens)
    ]
    words[-1] = words[-1].model_copy(update={"end_ms": end_ms})
    return Segment(start_ms=start_ms, end_ms=end_ms, text=text, channel=channel, words=words)


def transcript(*segments: Segment, duration_ms: int | None = 60_000, provider: str = "sis") -> Transcript:
    return Transcript(provider=provider, duration_ms=duration_ms, segments=list(segments))


def speech(*spans: tuple[int, int], channel: int | None = None) -> list[SpeechSpan]:
    return [SpeechSpan(start_ms=s, end_ms=e, channel=channel) for s, e in spans]


# ----------------------------------------------------------------------------- interval arithmetic


def test_union_merges_overlapping_and_touching_intervals_and_drops_empty_ones() -> None:
    assert union([(5, 9), (0, 3), (3, 4), (8, 12), (20, 20)]) == [(0, 4), (5, 12)]


def test_subtract_leaves_what_the_cut_does_not_reach() -> None:
    base = [(0, 10), (20, 30), (40, 50)]
    cut = [(2, 4), (8, 22), (25, 26), (45, 60)]
    assert subtract(base, cut) == [(0, 2), (4, 8), (22, 25), (26, 30), (40, 45)]
    assert subtract(base, []) == base
    assert subtract([], cut) == []


# ----------------------------------------------------------------------------- voice activity


def test_everything_covered_is_ratio_one_and_no_warning() -> None:
    text = transcript(said(0, 4_000), said(5_000, 9_000))

    check = check_voice_activity(text, speech((0, 4_000), (5_000, 9_000)), EXACT)

    assert check.coverage.basis is CoverageBasis.VOICE_ACTIVITY
    assert (check.coverage.speech_ms, check.coverage.covered_ms, check.coverage.ratio) == (8_000, 8_000, 1.0)
    assert check.warnings == []


def test_a_lost_window_is_one_located_warning() -> None:
    # The case: text to 22.7 s, nothing until 52.7 s, though speech never stopped.
    text = transcript(said(0, 22_700), said(52_700, 72_000))

    check = check_voice_activity(text, speech((0, 72_000)), EXACT)

    assert check.coverage.speech_ms == 72_000
    assert check.coverage.covered_ms == 72_000 - 30_000
    assert check.coverage.ratio == round(42_000 / 72_000, 4)
    [warning] = check.warnings
    assert (warning.code, warning.start_ms, warning.end_ms) == (SPEECH_WITHOUT_TEXT, 22_700, 52_700)
    assert "30.0 s of speech has no text (22.7–52.7 s)" in warning.message


def test_many_short_lost_utterances_with_no_text_between_them_make_one_hole() -> None:
    # Twelve 1.5 s utterances, each under the 2 s limit, lost together: one hole of 18 s.
    utterances = [(10_000 + i * 2_000, 11_500 + i * 2_000) for i in range(12)]
    text = transcript(said(0, 9_500), said(35_000, 40_000))

    check = check_voice_activity(text, speech((0, 9_500), *utterances, (35_000, 40_000)), EXACT)

    [warning] = check.warnings
    assert (warning.start_ms, warning.end_ms) == (10_000, 33_500)
    assert warning.message.startswith("18.0 s of speech has no text")
    assert check.coverage.covered_ms == 9_500 + 5_000


def test_text_between_two_uncovered_stretches_keeps_them_apart() -> None:
    text = transcript(said(2_500, 3_000, "one"), said(6_000, 6_500, "two"))

    check = check_voice_activity(text, speech((0, 2_500), (3_000, 6_000)), EXACT)

    assert [(w.start_ms, w.end_ms) for w in check.warnings] == [(0, 2_500), (3_000, 6_000)]


def test_short_gaps_count_in_the_ratio_but_are_not_warned_about() -> None:
    text = transcript(said(0, 4_000), said(5_500, 10_000))

    check = check_voice_activity(text, speech((0, 10_000)), EXACT)

    assert check.warnings == []
    assert check.coverage.covered_ms == 8_500
    assert check.coverage.ratio == 0.85


def test_words_reach_a_little_beyond_their_timings() -> None:
    # Silero pads its regions; Whisper's word edges are approximate.
    text = transcript(said(300, 3_700))
    rules = CoverageRules(word_reach_ms=300)

    assert check_voice_activity(text, speech((0, 4_000)), rules).coverage.ratio == 1.0
    assert check_voice_activity(text, speech((0, 4_100)), rules).coverage.covered_ms == 4_000


def test_a_segment_spanning_a_hole_does_not_hide_it_when_its_words_do_not() -> None:
    # Whisper's fallback can emit "Thank you for calling." stretched over 23 s: the words say where.
    words = [Word(start_ms=0, end_ms=400, text="Thank"), Word(start_ms=400, end_ms=1_200, text="you")]
    stretched = Segment(start_ms=0, end_ms=23_000, text="Thank you", words=words)

    check = check_voice_activity(transcript(stretched), speech((0, 23_000)), EXACT)

    [warning] = check.warnings
    assert (warning.start_ms, warning.end_ms) == (1_200, 23_000)


def test_a_segment_without_word_timings_covers_its_span() -> None:
    plain = Segment(start_ms=0, end_ms=10_000, text="no word timings here")

    assert check_voice_activity(transcript(plain), speech((0, 10_000)), EXACT).coverage.ratio == 1.0


def test_empty_text_covers_nothing() -> None:
    blank = Segment(start_ms=0, end_ms=10_000, text="  ")

    check = check_voice_activity(transcript(blank), speech((0, 10_000)), EXACT)

    assert check.coverage.covered_ms == 0
    assert len(check.warnings) == 1


def test_no_speech_is_fully_covered_whatever_the_text() -> None:
    for text in (transcript(), transcript(said(0, 1_000))):
        check = check_voice_activity(text, [], EXACT)
        assert (check.coverage.speech_ms, check.coverage.covered_ms, check.coverage.ratio) == (0, 0, 1.0)
        assert check.warnings == []


def test_no_text_at_all_misses_all_the_speech() -> None:
    check = check_voice_activity(transcript(), speech((1_000, 4_000), (6_000, 9_000)), EXACT)

    assert (check.coverage.speech_ms, check.coverage.covered_ms, check.coverage.ratio) == (6_000, 0, 0.0)
    [warning] = check.warnings
    assert (warning.start_ms, warning.end_ms) == (1_000, 9_000)


def test_overlapping_regions_of_one_channel_count_once() -> None:
    text = transcript(said(0, 6_000))

    check = check_voice_activity(text, speech((0, 4_000), (2_000, 6_000), (3_000, 5_000)), EXACT)

    assert check.coverage.speech_ms == 6_000
    assert check.coverage.ratio == 1.0


def test_simultaneous_speech_on_two_channels_needs_text_on_each() -> None:
    # Agent (0) and customer (1) talk over each other from 2 s to 6 s; the customer's text is lost.
    agent = said(0, 6_000, channel=0)
    regions = [*speech((0, 6_000), channel=0), *speech((2_000, 8_000), channel=1)]

    check = check_voice_activity(transcript(agent), regions, EXACT)

    assert check.coverage.speech_ms == 12_000, "overlapping speech on two channels counts on each"
    assert check.coverage.covered_ms == 6_000
    [warning] = check.warnings
    assert (warning.channel, warning.start_ms, warning.end_ms) == (1, 2_000, 8_000)
    assert "on channel 1" in warning.message


def test_both_channels_covered_while_overlapping() -> None:
    text = transcript(said(0, 6_000, channel=0), said(2_000, 8_000, channel=1))
    regions = [*speech((0, 6_000), channel=0), *speech((2_000, 8_000), channel=1)]

    check = check_voice_activity(text, regions, EXACT)

    assert check.coverage.ratio == 1.0
    assert check.warnings == []


def test_text_without_a_channel_covers_speech_on_any_channel() -> None:
    # SIS labels roles, not channels: its segments carry no channel.
    text = transcript(said(0, 6_000), said(6_000, 9_000))
    regions = [*speech((0, 6_000), channel=0), *speech((6_000, 9_000), channel=1)]

    assert check_voice_activity(text, regions, EXACT).coverage.ratio == 1.0


def test_speech_of_the_mix_is_covered_by_text_of_any_channel() -> None:
    text = transcript(said(0, 3_000, channel=0), said(3_000, 6_000, channel=1))

    assert check_voice_activity(text, speech((0, 6_000)), EXACT).coverage.ratio == 1.0


# ----------------------------------------------------------------------------- provider speech time


def test_reported_speech_covered_by_the_sentences() -> None:
    text = transcript(said(0, 3_000), said(4_000, 8_000))

    check = check_reported_speech(text, {None: 7_200})

    assert check.coverage.basis is CoverageBasis.PROVIDER_SPEECH_TIME
    assert (check.coverage.speech_ms, check.coverage.covered_ms, check.coverage.ratio) == (
        7_200,
        7_000,
        0.9722,
    )
    assert check.warnings == []


def test_reported_speech_far_beyond_the_sentences_is_warned_about_per_channel() -> None:
    text = transcript(said(0, 20_000, channel=0), said(0, 20_000, channel=1))

    check = check_reported_speech(text, {0: 20_000, 1: 50_000})

    assert (check.coverage.speech_ms, check.coverage.covered_ms) == (70_000, 40_000)
    [warning] = check.warnings
    assert (warning.code, warning.channel, warning.start_ms) == (SPEECH_WITHOUT_TEXT, 1, None)
    assert "detected 50.0 s of speech on channel 1, but its text spans only 20.0 s" in warning.message


def test_a_small_shortfall_against_reported_speech_is_within_slack() -> None:
    text = transcript(said(0, 27_500))

    assert check_reported_speech(text, {None: 30_000}).warnings == []
    assert len(check_reported_speech(text, {None: 31_000}).warnings) == 1


# ----------------------------------------------------------------------------- audio duration only


def test_only_the_duration_known_reports_long_gaps_not_a_speech_ratio() -> None:
    text = transcript(said(0, 22_700), said(52_700, 72_000), duration_ms=72_000)

    check = check_text_gaps(text, CoverageRules(word_reach_ms=0))

    assert check is not None
    assert check.coverage.basis is CoverageBasis.AUDIO_DURATION
    assert (check.coverage.speech_ms, check.coverage.ratio) == (None, None)
    assert check.coverage.covered_ms == 42_000
    [warning] = check.warnings
    assert (warning.code, warning.start_ms, warning.end_ms) == (LONG_GAP_WITHOUT_TEXT, 22_700, 52_700)
    assert "silence, or speech the recogniser missed" in warning.message


def test_gaps_shorter_than_the_limit_and_a_missing_duration_give_nothing() -> None:
    check = check_text_gaps(transcript(said(0, 5_000), said(15_000, 20_000), duration_ms=30_000))
    assert check is not None
    assert check.warnings == []
    # Text reaches 300 ms either side of its words, never before the start: 0–5.3 s, 14.7–20.3 s.
    assert check.coverage.covered_ms == 5_300 + 5_600
    assert check_text_gaps(transcript(said(0, 5_000), duration_ms=None)) is None


# ----------------------------------------------------------------------------- the one-liner


def dashscope_result(channels: dict[int, tuple[int, list[tuple[int, int]]]]) -> dict[str, Any]:
    return {
        "properties": {"channels": list(channels), "original_duration_in_milliseconds": 60_000},
        "transcripts": [
            {
                "channel_id": channel,
                "content_duration_in_milliseconds": speech_ms,
                "sentences": [
                    {"begin_time": b, "end_time": e, "text": "some words", "words": []} for b, e in sentences
                ],
            }
            for channel, (speech_ms, sentences) in channels.items()
        ],
    }


def test_with_coverage_prefers_voice_activity() -> None:
    raw = dashscope_result({0: (1_000, [(0, 1_000)])})
    text = transcript_from_dashscope(raw)

    reported = reported_speech_ms(DashScopeTranscription.parse(raw))
    checked = with_coverage(text, speech=speech((0, 30_000)), reported_speech=reported)

    assert checked.coverage is not None
    assert checked.coverage.basis is CoverageBasis.VOICE_ACTIVITY
    assert [w.code for w in checked.warnings] == [SPEECH_WITHOUT_TEXT]


def test_with_coverage_reads_dashscope_speech_time_per_channel() -> None:
    raw = dashscope_result({0: (10_000, [(0, 10_000)]), 1: (30_000, [(0, 10_000)])})

    reported = reported_speech_ms(DashScopeTranscription.parse(raw))
    checked = with_coverage(transcript_from_dashscope(raw), reported_speech=reported)

    assert checked.coverage is not None
    assert checked.coverage.basis is CoverageBasis.PROVIDER_SPEECH_TIME
    assert (checked.coverage.speech_ms, checked.coverage.covered_ms) == (40_000, 20_000)
    assert [(w.code, w.channel) for w in checked.warnings] == [(SPEECH_WITHOUT_TEXT, 1)]


def test_with_coverage_without_a_speech_figure_falls_back_to_gaps() -> None:
    text = transcript(said(0, 5_000), said(40_000, 45_000), duration_ms=45_000)

    checked = with_coverage(text)  # SIS reports only the recording's length

    assert checked.coverage is not None
    assert checked.coverage.basis is CoverageBasis.AUDIO_DURATION
    assert [w.code for w in checked.warnings] == [LONG_GAP_WITHOUT_TEXT]


def test_with_coverage_replaces_its_own_warnings_and_keeps_others() -> None:
    other = TranscriptWarning(code="SOMETHING_ELSE", message="kept")
    stale = TranscriptWarning(code=SPEECH_WITHOUT_TEXT, message="from an earlier check")
    text = transcript(said(0, 10_000)).model_copy(update={"warnings": [other, stale]})

    checked = with_coverage(text, speech=speech((0, 10_000)))

    assert checked.warnings == [other]
    assert text.warnings == [other, stale], "the input is not changed"


def test_with_coverage_without_any_evidence_changes_nothing() -> None:
    text = transcript(said(0, 1_000), duration_ms=None)
    assert with_coverage(text) == text


def test_coverage_travels_in_the_canonical_json_and_old_transcripts_still_load() -> None:
    checked = with_coverage(transcript(said(0, 5_000)), speech=speech((0, 30_000)))

    document = json.loads(render(checked, "json"))

    assert document["coverage"]["basis"] == "voice_activity"
    assert document["warnings"][0]["code"] == SPEECH_WITHOUT_TEXT
    assert Transcript.model_validate(document) == checked
    old = {"provider": "sis", "segments": [{"start_ms": 0, "end_ms": 1, "text": "hi"}]}
    loaded = Transcript.model_validate(old)
    assert (loaded.coverage, loaded.warnings) == (None, [])

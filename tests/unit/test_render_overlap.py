"""Overlapping speakers, reading speed, true labels and the subtitle settings.

Stereo agent/customer calls are the case: the customer starts before the agent has
finished.  Every file is read back with the real ``srt`` and ``webvtt-py`` parsers.
"""

from __future__ import annotations

import io
import itertools
import json
from collections import defaultdict

import pytest
from hypothesis import HealthCheck, given, settings

from bucketscribe.cli.main import main
from bucketscribe.domain.profile import Profile, RenderOptions
from bucketscribe.domain.transcript import Segment, Transcript, Word
from bucketscribe.render import render
from bucketscribe.render.cues import build_cues
from bucketscribe.render.timing import Cue
from bucketscribe.render.tokens import display_width
from tests.unit.test_render import (
    DEFAULTS,
    ParsedCue,
    both,
    parse_srt,
    parse_vtt,
    reading_columns,
    render_options,
    transcripts,
)

pytestmark = pytest.mark.unit

DIALOGUE = RenderOptions(overlap="dialogue")


def utterance(start_ms: int, text: str, speaker: str, word_ms: int = 300) -> Segment:
    """A segment whose words follow each other, ``word_ms`` apart, each lasting ``word_ms - 20``."""
    words = [
        Word(start_ms=start_ms + n * word_ms, end_ms=start_ms + (n + 1) * word_ms - 20, text=text)
        for n, text in enumerate(text.split())
    ]
    return Segment(start_ms=start_ms, end_ms=words[-1].end_ms, text=text, speaker=speaker, words=words)


def call(*segments: Segment) -> Transcript:
    return Transcript(provider="test", channels=2, speakers=["Agent", "Customer"], segments=list(segments))


# The customer starts 0.3 s before the agent has finished: the agent's question used to be
# cut to end where the customer began (shown 0.31 s, about 80 characters a second).
INTERRUPTED = call(
    utterance(0, "How can I help you today?", "Agent", word_ms=440),
    utterance(2320, "Hi, my internet has been down since this morning.", "Customer"),
)
# Both channels start together: a 2.2 s utterance used to become a 1 ms cue.
TOGETHER = call(
    utterance(0, "Thank you for calling, this is Sam.", "Agent", word_ms=360),
    utterance(0, "Hello, can you hear me now?", "Customer", word_ms=360),
)


def speech_of(segment: Segment) -> tuple[int, int]:
    return segment.words[0].start_ms, segment.words[-1].end_ms


def lines_of(cue: ParsedCue, speaker: str | None) -> list[str]:
    """The lines of ``speaker`` in a cue: all of a one-speaker cue, one of a dialogue cue."""
    if cue.dialogue:
        return [line for line, label in zip(cue.lines, cue.labels, strict=True) if label == speaker]
    return cue.lines if cue.label == speaker else []


def shown_at(cues: list[ParsedCue], ms: int) -> str:
    return " ".join(cue.text.replace("\n", " ") for cue in cues if cue.start_ms <= ms < cue.end_ms)


# --- simultaneous cues (the default) ----------------------------------------------------------


@pytest.mark.parametrize("transcript", [INTERRUPTED, TOGETHER], ids=["interrupted", "together"])
def test_each_speaker_keeps_a_cue_as_long_as_their_speech(transcript: Transcript) -> None:
    srt_cues, vtt_cues = both(transcript)
    assert len(srt_cues) == 2
    for segment in transcript.segments:
        start, end = speech_of(segment)
        (cue,) = [c for c in srt_cues if c.label == segment.speaker]
        assert cue.text.replace("\n", " ") == segment.text
        assert cue.start_ms == start and cue.end_ms >= end
        assert cue.duration_ms >= max(end - start, DEFAULTS.min_cue_ms)
        assert reading_columns(cue) * 1000 <= DEFAULTS.max_cps * cue.duration_ms
    # While both speak, both are on screen.
    overlap_at = max(speech_of(s)[0] for s in transcript.segments)
    on_screen = shown_at(srt_cues, overlap_at)
    assert all(segment.text in on_screen for segment in transcript.segments), on_screen
    # WebVTT: the later cue is placed on the top line so the two never cover each other.
    assert sorted(str(c.line_setting) for c in vtt_cues) == ["0", "None"]


def test_the_agents_question_is_no_longer_cut_short() -> None:
    srt_cues, _ = both(INTERRUPTED)
    question = next(c for c in srt_cues if c.label == "Agent")
    assert question.text == "How can I help you today?"
    assert question.duration_ms >= 2200  # was 310 ms
    assert reading_columns(question) / (question.duration_ms / 1000) <= DEFAULTS.max_cps


def test_cues_only_go_to_the_top_while_another_is_on_screen() -> None:
    transcript = call(
        utterance(0, "How can I help you today?", "Agent"),
        utterance(1500, "Hi.", "Customer"),
        utterance(5000, "Right, let me check that for you.", "Agent"),
        utterance(9000, "Thanks.", "Customer"),
    )
    _, vtt_cues = both(transcript)
    assert [(c.text, c.line_setting) for c in vtt_cues] == [
        ("How can I help you today?", None),
        ("Hi.", "0"),
        ("Right, let me check that for you.", None),
        ("Thanks.", None),
    ]


def test_fast_speech_is_shown_no_faster_than_the_reading_speed() -> None:
    # About 30 characters a second: each cue outlasts its speech, and the speaker's next
    # cue waits for it instead of covering it.
    fast = "Okay. So basically. Your account was. Moved to the new. Billing system. Last week."
    transcript = call(utterance(0, fast, "Agent", word_ms=150), utterance(20_000, "Fine.", "Customer"))
    srt_cues, _ = both(transcript)
    agent = [c for c in srt_cues if c.label == "Agent"]
    assert len(agent) == 6
    spoken = iter(transcript.segments[0].words)
    for cue in agent:
        words = [next(spoken) for _ in cue.text.split()]
        assert cue.start_ms >= words[0].start_ms
        assert cue.duration_ms >= words[-1].end_ms - words[0].start_ms
        assert reading_columns(cue) * 1000 <= DEFAULTS.max_cps * cue.duration_ms
    assert agent[-1].end_ms > transcript.segments[0].end_ms  # it catches up at the pause
    assert " ".join(c.text for c in agent) == fast


# --- one two-speaker cue (dialogue style) -----------------------------------------------------


@pytest.mark.parametrize("transcript", [INTERRUPTED, TOGETHER], ids=["interrupted", "together"])
def test_dialogue_style_puts_both_speakers_in_one_cue(transcript: Transcript) -> None:
    srt_cues, vtt_cues = both(transcript, DIALOGUE)
    pairs = [c for c in srt_cues if c.dialogue]
    assert pairs, srt_cues
    for cue in pairs:
        assert len(cue.lines) == 2 and set(cue.labels) == {"Agent", "Customer"}
    text = render(transcript, "srt", DIALOGUE)
    assert "\n-[Agent] " in text and "\n-[Customer] " in text
    assert "<v Agent>-" in render(transcript, "vtt", DIALOGUE)
    # One cue at a time (checked by both()); a speaker's lines stay up as long as their speech.
    for segment in transcript.segments:
        mine = [c for c in srt_cues if segment.speaker in c.labels]
        start, end = speech_of(segment)
        assert " ".join(line for c in mine for line in lines_of(c, segment.speaker)) == segment.text
        assert sum(c.duration_ms for c in mine) >= end - start
    assert all(c.line_setting is None for c in vtt_cues)


def test_dialogue_lines_keep_the_broadcast_dash_without_labels() -> None:
    options = RenderOptions(overlap="dialogue", speaker_labels=False)
    text = render(TOGETHER, "srt", options)
    cues = parse_srt(text, labelled=False)
    first = next(c for c in cues if c.dialogue)
    assert "[" not in text
    assert all(line.startswith("-") for line in text.split("\n\n")[0].splitlines()[2:])
    assert first.labels == [None, None]


# --- labels that are true ---------------------------------------------------------------------


def test_one_speaker_gets_no_label_in_any_format() -> None:
    transcript = Transcript(
        provider="test",
        speakers=["Speaker 1"],
        segments=[utterance(0, "Only me here.", "Speaker 1"), utterance(3000, "Still me.", "Speaker 1")],
    )
    assert render(transcript, "txt") == "Only me here. Still me.\n"
    assert "Speaker" not in render(transcript, "srt")
    assert "<v" not in render(transcript, "vtt")
    assert all(c.label is None for c in parse_vtt(render(transcript, "vtt")))


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt"])
def test_no_speakers_leaves_names_out_of_every_format(
    fmt: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(INTERRUPTED.model_dump_json()))
    assert main(["render", "--format", fmt, "--no-speakers", "-"]) == 0
    out = capsys.readouterr().out
    assert "Agent" not in out and "Customer" not in out and "<v" not in out
    assert "How can I help you today?" in out.replace("\n", " ")
    monkeypatch.setattr("sys.stdin", io.StringIO(INTERRUPTED.model_dump_json()))
    assert main(["render", "--format", fmt, "-"]) == 0
    assert "Agent" in capsys.readouterr().out


# --- the settings -----------------------------------------------------------------------------


def test_defaults_are_the_netflix_style_guide() -> None:
    assert (DEFAULTS.line_chars, DEFAULTS.max_lines, DEFAULTS.max_cps) == (42, 2, 20.0)
    assert (DEFAULTS.min_cue_ms, DEFAULTS.max_cue_ms) == (833, 7000)
    assert DEFAULTS.overlap == "simultaneous" and DEFAULTS.cue_chars == 84


def test_first_profile_format_still_loads() -> None:
    profile = Profile.model_validate(
        json.loads('{"render": {"speaker_labels": false, "max_cue_chars": 30, "max_cue_ms": 600}}')
    )
    options = profile.render
    assert options.cue_chars == 30 and options.shortest_cue_ms == 600
    text = " ".join(f"word{n}." for n in range(20))
    segment = Segment(start_ms=0, end_ms=2_000, text=text)
    srt_cues, _ = both(Transcript(provider="test", segments=[segment]), options)
    assert all(len(c.text.replace("\n", " ")) <= 30 and c.duration_ms <= 600 for c in srt_cues)


@pytest.mark.parametrize(
    ("settings_", "problem"),
    [
        ({"min_cue_ms": 8000}, "min_cue_ms"),
        ({"overlap": "dialogue", "max_lines": 1}, "max_lines"),
        ({"overlap": "stacked"}, "overlap"),
        ({"max_cps": 1}, "max_cps"),
        ({"max_cps": 5, "max_cue_ms": 1500}, "under 10 characters"),
    ],
)
def test_settings_that_cannot_work_are_refused(settings_: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        RenderOptions.model_validate(settings_)


def test_wide_characters_count_double_for_reading_speed() -> None:
    # 20 columns a second is 10 Chinese characters a second.
    text = "我们今天要讨论的是一个非常复杂的问题"  # 18 characters, 36 columns
    segment = Segment(start_ms=0, end_ms=1000, text=text)
    srt_cues, _ = both(Transcript(provider="test", language="zh", segments=[segment]))
    assert "".join(c.text.replace("\n", "") for c in srt_cues) == text
    assert sum(c.duration_ms for c in srt_cues) >= display_width(text) * 1000 / DEFAULTS.max_cps


# --- properties of any transcript, on the cues before they are written ------------------------


def assert_timed_by_the_rules(cues: list[Cue], options: RenderOptions) -> None:
    by_track: dict[str | None, list[Cue]] = defaultdict(list)
    for cue in cues:
        speech = cue.speech_end_ms - cue.speech_start_ms
        assert cue.start_ms >= cue.speech_start_ms, cue  # never before its words
        assert cue.end_ms - cue.start_ms >= max(speech, options.shortest_cue_ms, 1), cue
        columns = sum(display_width(line) for line in cue.lines)
        assert columns * 1000 <= options.max_cps * (cue.end_ms - cue.start_ms) + 1e-6, cue
        by_track[cue.track].append(cue)
    assert [c.start_ms for c in cues] == sorted(c.start_ms for c in cues)
    sequences = [cues] if options.overlap == "dialogue" else list(by_track.values())
    for sequence in sequences:
        for cue, following in itertools.pairwise(sequence):
            assert cue.end_ms <= following.start_ms, (cue, following)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcript=transcripts(), options=render_options())
def test_no_cue_is_shorter_than_its_speech_faster_than_reading_or_out_of_order(
    transcript: Transcript, options: RenderOptions
) -> None:
    cues = build_cues(transcript, options)
    assert_timed_by_the_rules(cues, options)
    srt_cues = parse_srt(render(transcript, "srt", options), labelled=options.speaker_labels)
    assert [(c.start_ms, c.end_ms) for c in srt_cues] == [(c.start_ms, c.end_ms) for c in cues]

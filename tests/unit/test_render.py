"""Renderers: every SRT and WebVTT output is read back with a real parser and checked against the limits."""

from __future__ import annotations

import html
import itertools
import re
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta

import pytest
import srt
import webvtt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bucketscribe.domain.profile import RenderOptions
from bucketscribe.domain.transcript import Segment, Transcript, TranslatedSegment, Translation, Word
from bucketscribe.render import FORMATS, SUFFIXES, bilingual_suffix, render, render_bilingual
from bucketscribe.render.tokens import display_width

pytestmark = pytest.mark.unit

DEFAULTS = RenderOptions()
_TAG = re.compile(r"<[^>]*>")
_VOICE = re.compile(r"<v ([^>]*)>")
_SRT_LABEL = re.compile(r"^\[([^\]]*)\] ")


@dataclass
class ParsedCue:
    """A cue as a parser reads it: the spoken text of each line, and what decorates it."""

    start_ms: int
    end_ms: int
    lines: list[str]
    labels: list[str | None]  # the speaker named on each line (None: no name there)
    prefix_widths: list[int]  # columns that "-" and "[name] " take on each line (SRT only)
    dialogue: bool = False
    line_setting: str | None = None  # WebVTT "line:" setting

    @property
    def label(self) -> str | None:
        return self.labels[0]

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


def _is_dialogue(lines: list[str]) -> bool:
    return len(lines) > 1 and all(line.startswith("-") for line in lines)


def parse_srt(text: str, *, labelled: bool) -> list[ParsedCue]:
    cues = []
    for subtitle in srt.parse(text, ignore_errors=False):
        raw = subtitle.content.split("\n")
        dialogue = _is_dialogue(raw)
        lines, labels, prefixes = [], [], []
        for number, line in enumerate(raw):
            prefix, label = "", None
            if dialogue:
                prefix, line = "-", line[1:]
            if labelled and (number == 0 or dialogue) and (match := _SRT_LABEL.match(line)):
                label, line = match.group(1), line[match.end() :]
                prefix += match.group(0)
            lines.append(line)
            labels.append(label)
            prefixes.append(display_width(prefix))
        cues.append(ParsedCue(_ms(subtitle.start), _ms(subtitle.end), lines, labels, prefixes, dialogue))
    return cues


def _ms(delta: timedelta) -> int:
    return round(delta.total_seconds() * 1000)


def parse_vtt(text: str) -> list[ParsedCue]:
    assert text.startswith("WEBVTT\n")
    cues = []
    for caption in webvtt.from_string(text, strict=True).captions:
        raw = caption.raw_text.split("\n")
        labels = [html.unescape(match.group(1)) if (match := _VOICE.match(line)) else None for line in raw]
        lines = [html.unescape(_TAG.sub("", line)) for line in raw]
        dialogue = _is_dialogue(lines)
        if dialogue:
            lines = [line[1:] for line in lines]
        setting = caption.settings.line  # webvtt-py reads the cue settings
        cues.append(
            ParsedCue(
                round(caption.start_in_seconds * 1000 + _fraction_ms(caption.start)),
                round(caption.end_in_seconds * 1000 + _fraction_ms(caption.end)),
                lines,
                labels,
                [0] * len(lines),
                dialogue,
                setting,
            )
        )
    return cues


def _fraction_ms(stamp: str) -> int:
    # webvtt-py's *_in_seconds drops the milliseconds; take them from the timestamp itself.
    return int(stamp.rsplit(".", 1)[1])


def reading_columns(cue: ParsedCue, *, bilingual: bool = False) -> int:
    """What a reader reads: every line, or one language's line of a bilingual cue."""
    widths = [display_width(line) for line in cue.lines]
    return max(widths) if bilingual else sum(widths)


def assert_well_formed(
    cues: list[ParsedCue],
    options: RenderOptions,
    *,
    bilingual: bool = False,
    longest_speech_ms: int = 0,
) -> None:
    """Every limit the renderers promise: durations, reading speed, lines, characters, order."""
    line_room = min(options.line_chars, options.max_cue_chars or options.line_chars)
    for cue in cues:
        assert cue.duration_ms >= max(options.shortest_cue_ms, 1), cue
        # Only a single word spoken for longer than the longest cue makes a longer cue.
        assert cue.duration_ms <= max(options.max_cue_ms, longest_speech_ms), cue
        columns = reading_columns(cue, bilingual=bilingual)
        assert columns * 1000 <= options.max_cps * cue.duration_ms + 1e-6, (cue, "reads too fast")
        assert 1 <= len(cue.lines) <= (2 if bilingual else options.max_lines), cue
        for line, prefix in zip(cue.lines, cue.prefix_widths, strict=True):
            assert line.strip() == line and line, cue
            assert display_width(line) + prefix <= line_room, cue
            assert len(line) + prefix <= line_room, cue
        assert sum(len(line) for line in cue.lines) + sum(cue.prefix_widths) <= options.cue_chars, cue
    starts = [cue.start_ms for cue in cues]
    assert starts == sorted(starts), "cues out of order"
    if options.overlap == "dialogue" and not bilingual:
        assert_in_sequence(cues)
    else:
        by_label: dict[str | None, list[ParsedCue]] = defaultdict(list)
        for cue in cues:
            by_label[cue.label].append(cue)
        for label, own in by_label.items():
            # One speaker's cues follow each other (a name shortened to fit may stand for two).
            if label is not None and not label.endswith("…"):
                assert_in_sequence(own)


def assert_in_sequence(cues: list[ParsedCue]) -> None:
    for cue, following in itertools.pairwise(cues):
        assert following.start_ms > cue.start_ms, (cue, following)
        assert cue.end_ms <= following.start_ms, (cue, following)


def assert_in_order(needles: list[str], cues: list[ParsedCue]) -> None:
    """All needles appear, in order, in the cue texts (spacing aside: CJK has none)."""
    haystack = "".join("".join(cue.lines) for cue in cues).replace(" ", "")
    cursor = 0
    for needle in needles:
        found = haystack.find(needle.replace(" ", ""), cursor)
        assert found >= 0, f"{needle!r} missing after position {cursor} in {haystack!r}"
        cursor = found + len(needle.replace(" ", ""))


def both(
    transcript: Transcript, options: RenderOptions | None = None
) -> tuple[list[ParsedCue], list[ParsedCue]]:
    """The SRT and WebVTT cues, each checked against the limits; they must agree."""
    options = options or DEFAULTS
    srt_cues = parse_srt(render(transcript, "srt", options), labelled=options.speaker_labels)
    vtt_cues = parse_vtt(render(transcript, "vtt", options))
    longest = max((s.end_ms - s.start_ms for s in transcript.segments), default=0)
    assert_well_formed(srt_cues, options, longest_speech_ms=longest)
    assert_well_formed(vtt_cues, options, longest_speech_ms=longest)
    assert [(c.start_ms, c.end_ms, c.lines, c.labels, c.dialogue) for c in srt_cues] == [
        (c.start_ms, c.end_ms, c.lines, c.labels, c.dialogue) for c in vtt_cues
    ]
    return srt_cues, vtt_cues


def words_at(start_ms: int, texts: list[str], step_ms: int = 400) -> list[Word]:
    return [
        Word(start_ms=start_ms + i * step_ms, end_ms=start_ms + (i + 1) * step_ms - 50, text=text)
        for i, text in enumerate(texts)
    ]


def worded_segment(start_ms: int, text: str, speaker: str | None = None, step_ms: int = 400) -> Segment:
    words = words_at(start_ms, text.split(), step_ms)
    return Segment(start_ms=start_ms, end_ms=words[-1].end_ms, text=text, speaker=speaker, words=words)


CALL = Transcript(
    provider="test",
    speakers=["Agent", "User"],
    segments=[
        worded_segment(0, "Good morning, you are through to support. How can I help?", "Agent"),
        worded_segment(5000, "My router keeps dropping the connection every few minutes.", "User"),
        worded_segment(9000, "Sorry to hear that.", "Agent"),
    ],
)

LONG_TEXT = (
    "This recording has no word timings at all, so the renderer has to spread the time of the "
    "segment over its words in proportion to their length, and it must still cut the text into "
    "cues that respect every limit on characters, lines and duration that a subtitle has to meet."
)


# --- json and file names ----------------------------------------------------------------------


def test_json_is_the_canonical_dump_and_reads_back() -> None:
    out = render(CALL, "json")
    assert out == CALL.model_dump_json(indent=2)
    assert Transcript.model_validate_json(out) == CALL


def test_formats_and_suffixes() -> None:
    assert FORMATS == ("json", "txt", "srt", "vtt")
    assert SUFFIXES == {"json": ".json", "txt": ".txt", "srt": ".srt", "vtt": ".vtt"}
    assert bilingual_suffix("en", "vtt") == ".en.vtt"
    with pytest.raises(ValueError):
        render(CALL, "pdf")  # type: ignore[arg-type]


# --- txt --------------------------------------------------------------------------------------


def seg(start_ms: int, text: str, speaker: str | None = None, channel: int | None = None) -> Segment:
    return Segment(start_ms=start_ms, end_ms=start_ms + 1000, text=text, speaker=speaker, channel=channel)


def test_txt_joins_turns_into_labelled_paragraphs() -> None:
    transcript = Transcript(
        provider="test",
        segments=[
            seg(0, "Hello.", "Agent"),
            seg(1000, " How can I help? ", "Agent"),
            seg(2000, "It is broken.", "User"),
            seg(3000, "Which part?", "Agent"),
        ],
    )
    expected = "Agent: Hello. How can I help?\n\nUser: It is broken.\n\nAgent: Which part?\n"
    assert render(transcript, "txt") == expected
    # Labels off means no names, in txt as in subtitles; each turn still starts a paragraph.
    unlabelled = "Hello. How can I help?\n\nIt is broken.\n\nWhich part?\n"
    assert render(transcript, "txt", RenderOptions(speaker_labels=False)) == unlabelled


def test_txt_single_speaker_has_no_label() -> None:
    # "Speaker 1:" before every paragraph says nothing when nobody else speaks.
    transcript = Transcript(provider="test", segments=[seg(0, "One.", "spk0"), seg(1000, "Two.", "spk0")])
    assert render(transcript, "txt") == "One. Two.\n"
    assert render(transcript, "txt", RenderOptions(speaker_labels=False)) == "One. Two.\n"


def test_txt_without_speakers_has_no_prefix() -> None:
    transcript = Transcript(provider="test", segments=[seg(0, "One."), seg(1000, ""), seg(2000, "Two.")])
    assert render(transcript, "txt") == "One. Two.\n"


def test_txt_labels_channels_when_there_is_no_speaker() -> None:
    transcript = Transcript(
        provider="test",
        channels=2,
        segments=[seg(0, "Hi.", channel=0), seg(1000, "Hello.", channel=1), seg(2000, "Bye.", channel=0)],
    )
    assert render(transcript, "txt") == "Channel 1: Hi.\n\nChannel 2: Hello.\n\nChannel 1: Bye.\n"
    mono = Transcript(provider="test", channels=1, segments=[seg(0, "Hi.", channel=0)])
    assert render(mono, "txt") == "Hi.\n"


def test_txt_joins_cjk_without_spaces() -> None:
    transcript = Transcript(
        provider="test", segments=[seg(0, "你好。"), seg(1000, "世界。"), seg(2000, "OK")]
    )
    assert render(transcript, "txt") == "你好。世界。OK\n"


# --- subtitles: labels, sentences, speakers ---------------------------------------------------


def test_subtitles_carry_speaker_labels() -> None:
    srt_cues, vtt_cues = both(CALL)
    assert [c.label for c in srt_cues] == [c.label for c in vtt_cues]
    assert {c.label for c in srt_cues} == {"Agent", "User"}
    srt_text = render(CALL, "srt")
    assert "[Agent] Good morning," in srt_text
    assert "<v User>My router" in render(CALL, "vtt")
    assert_in_order([w.text for s in CALL.segments for w in s.words], srt_cues)


def test_subtitles_without_labels() -> None:
    options = RenderOptions(speaker_labels=False)
    srt_cues, vtt_cues = both(CALL, options)
    assert all(c.label is None for c in vtt_cues)
    assert "[Agent]" not in render(CALL, "srt", options)
    assert "<v " not in render(CALL, "vtt", options)
    assert_in_order([w.text for s in CALL.segments for w in s.words], srt_cues)


def test_cues_split_at_sentence_ends_and_never_span_speakers() -> None:
    srt_cues, _ = both(CALL)
    texts = [c.text.replace("\n", " ") for c in srt_cues]
    assert texts == [
        "Good morning, you are through to support.",
        "How can I help?",
        "My router keeps dropping the connection every few minutes.",
        "Sorry to hear that.",
    ]
    assert [c.label for c in srt_cues] == ["Agent", "Agent", "User", "Agent"]
    # Cue times come from the words: the second sentence starts at its first word.
    assert srt_cues[1].start_ms == CALL.segments[0].words[7].start_ms


def test_punctuation_missing_from_words_is_taken_from_the_segment_text() -> None:
    segment = Segment(
        start_ms=0,
        end_ms=1200,
        text="Hello, world. Bye!",
        words=words_at(0, ["Hello", "world", "Bye"]),
    )
    srt_cues, _ = both(Transcript(provider="test", segments=[segment]))
    assert [c.text for c in srt_cues] == ["Hello, world.", "Bye!"]


def test_long_worded_segment_respects_tight_limits() -> None:
    text = " ".join(f"word{i}" for i in range(80))
    transcript = Transcript(provider="test", segments=[worded_segment(1000, text, "Narrator", step_ms=300)])
    options = RenderOptions(max_cue_chars=30, max_cue_ms=2000)
    srt_cues, _ = both(transcript, options)
    assert len(srt_cues) >= 80 * 6 // 30
    assert_in_order(text.split(), srt_cues)
    assert srt_cues[0].start_ms == 1000


def test_long_segment_without_words_is_split_in_proportion() -> None:
    segment = Segment(start_ms=2000, end_ms=32000, text=LONG_TEXT)
    srt_cues, _ = both(Transcript(provider="test", segments=[segment]))
    assert len(srt_cues) >= 4
    assert_in_order(LONG_TEXT.split(), srt_cues)
    assert srt_cues[0].start_ms == 2000 and srt_cues[-1].end_ms == 32000
    # Time is spread by length: the first cue's share of time follows its share of text.
    first_share = (srt_cues[0].end_ms - 2000) / 30000
    text_share = len(srt_cues[0].text) / len(LONG_TEXT)
    assert abs(first_share - text_share) < 0.05
    assert " ".join(c.text.replace("\n", " ") for c in srt_cues) == LONG_TEXT


def test_zero_duration_segments_get_a_readable_cue() -> None:
    transcript = Transcript(
        provider="test",
        segments=[
            Segment(start_ms=1000, end_ms=1000, text="Blink."),
            Segment(start_ms=5000, end_ms=5000, text=LONG_TEXT),
            Segment(start_ms=5000, end_ms=6000, text="Same start."),
        ],
    )
    srt_cues, _ = both(transcript)
    assert (srt_cues[0].start_ms, srt_cues[0].end_ms) == (1000, 1000 + DEFAULTS.min_cue_ms)
    assert_in_order(["Blink.", *LONG_TEXT.split(), "Same start."], srt_cues)
    # Text spoken in no time at all is shown for as long as it takes to read.
    for cue in srt_cues[1:]:
        assert cue.duration_ms * DEFAULTS.max_cps >= reading_columns(cue) * 1000


def test_overlapping_speech_shows_both_speakers() -> None:
    transcript = Transcript(
        provider="test",
        channels=2,
        segments=[
            Segment(start_ms=0, end_ms=4000, text="I was saying something long", channel=0),
            Segment(start_ms=1500, end_ms=2500, text="Right.", channel=1),
        ],
    )
    srt_cues, vtt_cues = both(transcript)
    # Each cue lasts as long as its speech: nothing is cut where the other speaker starts.
    assert [(c.start_ms, c.end_ms) for c in srt_cues] == [(0, 4000), (1500, 2500)]
    assert [c.label for c in vtt_cues] == ["Channel 1", "Channel 2"]
    # In WebVTT the cue shown beside another goes to the top line, so they never cover each other.
    assert [c.line_setting for c in vtt_cues] == [None, "0"]


def test_segments_out_of_order_come_out_sorted() -> None:
    transcript = Transcript(provider="test", segments=[seg(5000, "Later."), seg(0, "Earlier.")])
    srt_cues, _ = both(transcript)
    assert [c.text for c in srt_cues] == ["Earlier.", "Later."]


# --- CJK --------------------------------------------------------------------------------------


def test_cjk_words_join_without_spaces() -> None:
    segment = Segment(start_ms=0, end_ms=1000, text="你好 世界", words=words_at(0, ["你好", "世界"], 500))
    srt_cues, vtt_cues = both(Transcript(provider="test", language="zh", segments=[segment]))
    assert [c.text for c in srt_cues] == ["你好世界"]
    assert [c.text for c in vtt_cues] == ["你好世界"]


def test_mixed_cjk_and_latin_words() -> None:
    texts = ["我们", "use", "Python", "来", "写代码"]
    segment = Segment(start_ms=0, end_ms=2000, text="", words=words_at(0, texts))
    srt_cues, _ = both(Transcript(provider="test", segments=[segment]))
    assert [c.text for c in srt_cues] == ["我们use Python来写代码"]


def test_long_cjk_text_wraps_by_characters() -> None:
    text = "今天我们讨论一下这个项目的进展情况，" * 6 + "谢谢大家。"
    segment = Segment(start_ms=0, end_ms=30000, text=text)
    srt_cues, _ = both(Transcript(provider="test", language="zh", segments=[segment]))
    assert len(srt_cues) >= 3
    for cue in srt_cues:
        for line in cue.lines:
            assert " " not in line
            assert len(line) <= DEFAULTS.line_chars // 2  # a CJK character takes two columns
    assert "".join("".join(c.lines) for c in srt_cues) == text


def test_unsegmented_cjk_word_is_cut_to_fit() -> None:
    # Some engines hand back a whole sentence as one "word".
    text = "这是一个没有分词的很长很长很长很长很长很长很长很长的句子"
    segment = Segment(start_ms=0, end_ms=4000, text=text, words=[Word(start_ms=0, end_ms=4000, text=text)])
    srt_cues, _ = both(Transcript(provider="test", segments=[segment]))
    assert "".join("".join(c.lines) for c in srt_cues) == text


# --- escaping, timestamps, empty --------------------------------------------------------------


def test_vtt_escapes_markup_characters() -> None:
    segment = Segment(start_ms=0, end_ms=2000, text="Use <b> & x > y", speaker="A<1>")
    other = Segment(start_ms=3000, end_ms=4000, text="Fine.", speaker="B")
    transcript = Transcript(provider="test", segments=[segment, other])
    vtt_text = render(transcript, "vtt")
    assert "<v A&lt;1&gt;>Use &lt;b&gt; &amp; x &gt; y</v>" in vtt_text
    srt_cues, vtt_cues = both(transcript)
    assert vtt_cues[0].text == "Use <b> & x > y" and vtt_cues[0].label == "A<1>"
    assert srt_cues[0].text == "Use <b> & x > y" and srt_cues[0].label == "A<1>"


def test_timestamps_have_the_format_of_each_standard() -> None:
    segment = Segment(start_ms=3_723_004, end_ms=3_725_000, text="Late.")
    transcript = Transcript(provider="test", segments=[segment])
    srt_text, vtt_text = render(transcript, "srt"), render(transcript, "vtt")
    assert srt_text == "1\n01:02:03,004 --> 01:02:05,000\nLate.\n"
    assert vtt_text == "WEBVTT\n\n01:02:03.004 --> 01:02:05.000\nLate.\n"


def test_empty_transcript_gives_valid_empty_files() -> None:
    empty = Transcript(provider="test")
    assert render(empty, "srt") == ""
    assert render(empty, "txt") == ""
    assert render(empty, "vtt") == "WEBVTT\n"
    assert list(srt.parse(render(empty, "srt"))) == []
    assert webvtt.from_string(render(empty, "vtt"), strict=True).captions == []
    blank = Transcript(provider="test", segments=[Segment(start_ms=0, end_ms=10, text="  ")])
    assert render(blank, "srt") == "" and render(blank, "vtt") == "WEBVTT\n"


# --- bilingual --------------------------------------------------------------------------------

ZH_EN = Transcript(
    provider="test",
    language="zh",
    segments=[
        Segment(start_ms=0, end_ms=2000, text="你好，世界。"),
        Segment(
            start_ms=2500,
            end_ms=12000,
            text="我们今天要讨论的是一个非常复杂的问题，需要大家一起仔细地想一想。",
        ),
    ],
    translations=[
        Translation(
            language="en",
            segments=[
                TranslatedSegment(start_ms=0, end_ms=2000, text="Hello, world."),
                TranslatedSegment(
                    start_ms=2500,
                    end_ms=12000,
                    text="What we are going to discuss today is a very complicated problem, "
                    "and everyone needs to think about it carefully together.",
                ),
            ],
        )
    ],
)


@pytest.mark.parametrize("fmt", ["srt", "vtt"])
def test_bilingual_cues_pair_original_and_translation(fmt: str) -> None:
    out = render_bilingual(ZH_EN, "en", fmt)  # type: ignore[arg-type]
    assert out == render(ZH_EN, fmt, translation="en")  # type: ignore[arg-type]
    cues = parse_srt(out, labelled=False) if fmt == "srt" else parse_vtt(out)
    assert_well_formed(cues, DEFAULTS, bilingual=True)
    assert all(len(c.lines) == 2 for c in cues)
    assert cues[0].lines == ["你好，世界。", "Hello, world."]
    originals = "".join(c.lines[0] for c in cues)
    translated = " ".join(c.lines[1] for c in cues)
    assert originals == "你好，世界。" + ZH_EN.segments[1].text
    assert translated == " ".join(t.text for t in ZH_EN.translations[0].segments)
    # Aligned by time: no translated text is shown before its original segment starts.
    second = [c for c in cues if c.start_ms >= 2500]
    assert " ".join(c.lines[1] for c in second) == ZH_EN.translations[0].segments[1].text


def test_bilingual_keeps_untranslated_and_unmatched_text() -> None:
    transcript = Transcript(
        provider="test",
        segments=[seg(0, "Hola."), seg(10_000, "Adiós.")],
        translations=[
            Translation(
                language="en",
                segments=[
                    TranslatedSegment(start_ms=0, end_ms=1000, text="Hello."),
                    TranslatedSegment(start_ms=5000, end_ms=6000, text="(music)"),
                ],
            )
        ],
    )
    cues = parse_srt(render_bilingual(transcript, "en", "srt"), labelled=False)
    assert_well_formed(cues, DEFAULTS, bilingual=True)
    assert [c.lines for c in cues] == [["Hola.", "Hello."], ["(music)"], ["Adiós."]]


def test_bilingual_errors() -> None:
    with pytest.raises(LookupError, match="available: en"):
        render_bilingual(ZH_EN, "fr", "srt")
    with pytest.raises(ValueError):
        render(ZH_EN, "txt", translation="en")
    assert render_bilingual(ZH_EN, "EN", "srt") == render_bilingual(ZH_EN, "en", "srt")


# --- properties -------------------------------------------------------------------------------

_LATIN_WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzABC", min_size=1, max_size=14)
_CJK_WORDS = st.text(alphabet="你好世界我们今天讨论问题东京日本語です", min_size=1, max_size=5)
_WORDS = st.one_of(
    _LATIN_WORDS,
    _CJK_WORDS,
    _LATIN_WORDS.map(lambda w: w + "."),
    _CJK_WORDS.map(lambda w: "「" + w + "，"),
    st.sampled_from(["。", "(", "?!", "&", "<i>"]),
)


@st.composite
def segments(draw: st.DrawFn) -> Segment:
    start = draw(st.integers(0, 60_000))
    duration = draw(st.one_of(st.just(0), st.integers(0, 20_000)))
    texts = draw(st.lists(_WORDS, min_size=1, max_size=40))
    speaker = draw(st.sampled_from([None, "A", "Bob", "Speaker Number Seventeen Long"]))
    with_words = draw(st.booleans())
    words: list[Word] = []
    if with_words:
        cuts = sorted(
            draw(
                st.lists(
                    st.integers(start, start + duration), min_size=len(texts) * 2, max_size=len(texts) * 2
                )
            )
        )
        spacing = draw(st.sampled_from(["", " "]))  # Whisper puts a space before each word
        words = [
            Word(start_ms=cuts[2 * i], end_ms=cuts[2 * i + 1], text=spacing + t) for i, t in enumerate(texts)
        ]
    return Segment(
        start_ms=start, end_ms=start + duration, text=" ".join(texts), speaker=speaker, words=words
    )


@st.composite
def transcripts(draw: st.DrawFn) -> Transcript:
    parts = draw(st.lists(segments(), max_size=8))
    translated = [
        TranslatedSegment(
            start_ms=s.start_ms,
            end_ms=s.end_ms,
            text=draw(st.text(alphabet="abcdefgh ijk", min_size=0, max_size=200)).strip() or "x",
        )
        for s in parts
        if draw(st.booleans())
    ]
    return Transcript(
        provider="test",
        segments=parts,
        translations=[Translation(language="en", segments=translated)],
    )


@st.composite
def render_options(draw: st.DrawFn) -> RenderOptions:
    """Any valid settings, the first profile format's three keys among them."""
    max_cue_ms = draw(st.integers(500, 10_000))
    max_lines = draw(st.integers(1, 3))
    return RenderOptions(
        speaker_labels=draw(st.booleans()),
        line_chars=draw(st.integers(10, 60)),
        max_lines=max_lines,
        max_cue_chars=draw(st.one_of(st.none(), st.integers(10, 120))),
        min_cue_ms=draw(st.integers(0, max_cue_ms)),
        max_cue_ms=max_cue_ms,
        max_cps=draw(st.floats(max(5, 10_000 / max_cue_ms + 0.01), 40)),  # 10 characters fit in a cue
        overlap=draw(st.sampled_from(["simultaneous", "dialogue"] if max_lines > 1 else ["simultaneous"])),
    )


_OPTIONS = render_options()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcript=transcripts(), options=_OPTIONS)
def test_any_transcript_gives_parseable_subtitles_within_limits(
    transcript: Transcript, options: RenderOptions
) -> None:
    srt_cues, _ = both(transcript, options)
    for segment in transcript.segments:
        # Overlapping segments may interleave (even inside a long word), but each reads in order.
        assert_in_order(list(segment.text.replace(" ", "")), srt_cues)
    words = [w for s in transcript.segments for w in s.text.split()]
    shown = "".join("".join(c.lines) for c in srt_cues).replace(" ", "")
    assert sorted(shown) == sorted("".join(words))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(transcript=transcripts(), options=_OPTIONS)
def test_any_bilingual_transcript_stays_within_limits(transcript: Transcript, options: RenderOptions) -> None:
    for fmt in ("srt", "vtt"):
        out = render_bilingual(transcript, "en", fmt, options)
        cues = parse_srt(out, labelled=options.speaker_labels) if fmt == "srt" else parse_vtt(out)
        longest = max((s.end_ms - s.start_ms for s in transcript.segments), default=0)
        assert_well_formed(cues, options, bilingual=True, longest_speech_ms=longest)
        shown = "".join("".join(c.lines) for c in cues).replace(" ", "")
        expected = [s.text for s in transcript.segments] + [
            t.text for t in transcript.translations[0].segments
        ]
        assert sorted(shown) == sorted("".join(expected).replace(" ", ""))

"""Coverage: how much of a recording's speech its transcript accounts for, and where it does not.

A recogniser can lose speech without a word (Whisper drops whole 30 s windows of repetitive
audio); this module notices. Three kinds of evidence, best first:

- **voice activity** (:func:`check_voice_activity`): speech regions detected on the audio
  itself, e.g. the local engine's Silero VAD. Every stretch of speech with no word nearby is
  found and located: ``SPEECH_WITHOUT_TEXT`` warnings with start and end.
- **the provider's speech time** (:func:`check_reported_speech`): where a provider reports the
  detected speech per channel (its adapter reads it from the result); text that covers much less
  than that is a ``SPEECH_WITHOUT_TEXT`` warning, unlocated.
- **the audio duration** (:func:`check_text_gaps`): where a provider reports only the recording's
  length.
  Long stretches without text are ``LONG_GAP_WITHOUT_TEXT`` warnings: silence or lost speech,
  the evidence cannot tell which.

:func:`with_coverage` picks the best evidence at hand and returns the transcript with its
``coverage`` and ``warnings`` filled in. Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from bucketscribe.domain.transcript import Coverage, CoverageBasis, Segment, Transcript, TranscriptWarning

SPEECH_WITHOUT_TEXT = "SPEECH_WITHOUT_TEXT"
LONG_GAP_WITHOUT_TEXT = "LONG_GAP_WITHOUT_TEXT"
COVERAGE_CODES = (SPEECH_WITHOUT_TEXT, LONG_GAP_WITHOUT_TEXT)

Interval = tuple[int, int]  # [start_ms, end_ms), start < end


class SpeechSpan(BaseModel):
    """A stretch of detected speech; ``channel`` None means the whole recording (a mix)."""

    model_config = ConfigDict(frozen=True)

    start_ms: int = Field(ge=0)
    end_ms: int = Field(ge=0)
    channel: int | None = None


class CoverageRules(BaseModel):
    """The tolerances of a coverage check (defaults suit Whisper's and the providers' timings)."""

    model_config = ConfigDict(frozen=True)

    # Text accounts for speech this close to one of its words: word timings and the edges of
    # voice activity are both approximate (Silero pads its regions by a few hundred ms).
    word_reach_ms: int = Field(default=300, ge=0)
    # Less uncovered speech than this in one stretch is counted in the ratio, not warned about:
    # word timings on repeated phrases can be off by a sentence.
    min_hole_ms: int = Field(default=2_000, ge=0)
    # Provider totals: warn when the text covers less than this share of the reported speech
    # (and misses at least min_hole_ms); sentence spans and speech time differ a little.
    reported_speech_slack: float = Field(default=0.1, ge=0, le=1)
    # Audio duration only: a stretch this long without any text is worth a look.
    min_gap_ms: int = Field(default=20_000, ge=0)


DEFAULT_RULES = CoverageRules()


class CoverageCheck(BaseModel):
    """The outcome of one check: the figures and the warnings to record on the transcript."""

    coverage: Coverage
    warnings: list[TranscriptWarning] = Field(default_factory=list)

    def applied_to(self, transcript: Transcript) -> Transcript:
        """A copy of ``transcript`` carrying this check (earlier coverage warnings replaced)."""
        kept = [w for w in transcript.warnings if w.code not in COVERAGE_CODES]
        return transcript.model_copy(update={"coverage": self.coverage, "warnings": kept + self.warnings})


# ----------------------------------------------------------------------------- the checks


def check_voice_activity(
    transcript: Transcript, speech: Sequence[SpeechSpan], rules: CoverageRules = DEFAULT_RULES
) -> CoverageCheck:
    """Speech regions (per channel, or of the mix) against the words that cover them.

    Speech on a channel is covered only by text of that channel (or text with no channel);
    speech of the mix (channel None) by any text. Overlapping regions count once.
    """
    speech_ms = covered_ms = 0
    warnings: list[TranscriptWarning] = []
    by_channel: dict[int | None, list[Interval]] = {}
    for span in speech:
        if span.end_ms > span.start_ms:
            by_channel.setdefault(span.channel, []).append((span.start_ms, span.end_ms))
    for channel, spans in sorted(by_channel.items(), key=lambda item: -1 if item[0] is None else item[0]):
        regions = union(spans)
        text = union(text_reach(_segments_heard_on(transcript, channel), rules.word_reach_ms))
        uncovered = subtract(regions, text)
        speech_ms += total(regions)
        covered_ms += total(regions) - total(uncovered)
        for hole in _holes(uncovered, text):
            if total(hole) >= rules.min_hole_ms:
                warnings.append(_speech_without_text(hole, channel))
    warnings.sort(key=lambda w: (w.start_ms or 0, w.channel or 0))
    return CoverageCheck(
        coverage=_of_speech(CoverageBasis.VOICE_ACTIVITY, speech_ms, covered_ms), warnings=warnings
    )


def check_reported_speech(
    transcript: Transcript, speech_ms: Mapping[int | None, int], rules: CoverageRules = DEFAULT_RULES
) -> CoverageCheck:
    """A provider's total of detected speech per channel against the time its sentences span."""
    speech_total = covered_total = 0
    warnings: list[TranscriptWarning] = []
    for channel, reported in sorted(speech_ms.items(), key=lambda item: -1 if item[0] is None else item[0]):
        spoken = max(reported, 0)
        sentences = union(_span(s) for s in _segments_heard_on(transcript, channel) if s.text.strip())
        covered = min(total(sentences), spoken)
        speech_total += spoken
        covered_total += covered
        missing = spoken - covered
        if missing >= max(rules.min_hole_ms, rules.reported_speech_slack * spoken):
            where = "" if channel is None else f" on channel {channel}"
            warnings.append(
                TranscriptWarning(
                    code=SPEECH_WITHOUT_TEXT,
                    channel=channel,
                    message=(
                        f"the provider detected {_s(spoken)} of speech{where}, but its text spans only "
                        f"{_s(covered)}: {_s(missing)} of speech may have no text"
                    ),
                )
            )
    coverage = _of_speech(CoverageBasis.PROVIDER_SPEECH_TIME, speech_total, covered_total)
    return CoverageCheck(coverage=coverage, warnings=warnings)


def check_text_gaps(transcript: Transcript, rules: CoverageRules = DEFAULT_RULES) -> CoverageCheck | None:
    """Only the recording's length is known: report the long stretches that have no text.

    None when the transcript does not know its duration either.
    """
    if transcript.duration_ms is None:
        return None
    recording = [(0, transcript.duration_ms)] if transcript.duration_ms > 0 else []
    text = union(text_reach(transcript.segments, rules.word_reach_ms))
    gaps = subtract(recording, text)
    warnings = [
        TranscriptWarning(
            code=LONG_GAP_WITHOUT_TEXT,
            start_ms=start,
            end_ms=end,
            message=(
                f"no text for {_s(end - start)} ({_range(start, end)}): silence, or speech the "
                "recogniser missed; the provider reports no voice activity to tell which"
            ),
        )
        for start, end in gaps
        if end - start >= rules.min_gap_ms
    ]
    coverage = Coverage(
        basis=CoverageBasis.AUDIO_DURATION, covered_ms=total(recording) - total(gaps), speech_ms=None
    )
    return CoverageCheck(coverage=coverage, warnings=warnings)


def with_coverage(
    transcript: Transcript,
    *,
    speech: Sequence[SpeechSpan] | None = None,
    reported_speech: Mapping[int | None, int] | None = None,
    rules: CoverageRules = DEFAULT_RULES,
) -> Transcript:
    """The transcript with ``coverage`` and ``warnings`` from the best evidence at hand.

    ``speech``: voice activity on the audio, when it was detected; ``reported_speech``: the speech
    time the provider says it heard, per channel (keyed as the transcript labels segments: None
    for a single channel), where its result says. Otherwise the gaps against the recording's
    duration; with none of these, the transcript comes back unchanged.
    """
    if speech is not None:
        check: CoverageCheck | None = check_voice_activity(transcript, speech, rules)
    elif reported_speech is not None:
        check = check_reported_speech(transcript, dict(reported_speech), rules)
    else:
        check = check_text_gaps(transcript, rules)
    return check.applied_to(transcript) if check is not None else transcript


# ----------------------------------------------------------------------------- text and time


def text_reach(segments: Iterable[Segment], reach_ms: int) -> list[Interval]:
    """The time each piece of text accounts for: its words, widened by ``reach_ms``.

    A segment without word timings accounts for its whole span.
    """
    spans: list[Interval] = []
    for segment in segments:
        if not segment.text.strip():
            continue
        timed = [(w.start_ms, w.end_ms) for w in segment.words if w.text.strip()] or [_span(segment)]
        spans.extend((max(start - reach_ms, 0), end + reach_ms) for start, end in timed)
    return spans


def union(intervals: Iterable[Interval]) -> list[Interval]:
    """Sorted, non-overlapping intervals covering the same time (empty ones dropped)."""
    merged: list[Interval] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def subtract(base: list[Interval], cut: list[Interval]) -> list[Interval]:
    """The parts of ``base`` outside ``cut``; both sorted and non-overlapping (``union``)."""
    left: list[Interval] = []
    j = 0
    for start, end in base:
        while j < len(cut) and cut[j][1] <= start:
            j += 1
        cursor, k = start, j
        while k < len(cut) and cut[k][0] < end:
            if cut[k][0] > cursor:
                left.append((cursor, cut[k][0]))
            cursor = max(cursor, cut[k][1])
            k += 1
        if cursor < end:
            left.append((cursor, end))
    return left


def total(intervals: Iterable[Interval]) -> int:
    return sum(end - start for start, end in intervals)


def _holes(uncovered: list[Interval], text: list[Interval]) -> list[list[Interval]]:
    """Uncovered speech grouped into holes: pieces with no text between them are one hole.

    A lost stretch of many short utterances is one hole, not many small ones under the limit.
    """
    holes: list[list[Interval]] = []
    j = 0
    for piece in uncovered:
        if holes:
            gap_start = holes[-1][-1][1]
            while j < len(text) and text[j][1] <= gap_start:
                j += 1
            if not (j < len(text) and text[j][0] < piece[0]):
                holes[-1].append(piece)
                continue
        holes.append([piece])
    return holes


def _segments_heard_on(transcript: Transcript, channel: int | None) -> list[Segment]:
    if channel is None:
        return transcript.segments
    return [s for s in transcript.segments if s.channel is None or s.channel == channel]


def _speech_without_text(hole: list[Interval], channel: int | None) -> TranscriptWarning:
    start, end = hole[0][0], hole[-1][1]
    where = "" if channel is None else f" on channel {channel}"
    return TranscriptWarning(
        code=SPEECH_WITHOUT_TEXT,
        start_ms=start,
        end_ms=end,
        channel=channel,
        message=f"{_s(total(hole))} of speech{where} has no text ({_range(start, end)})",
    )


def _span(segment: Segment) -> Interval:
    return (segment.start_ms, segment.end_ms)


def _of_speech(basis: CoverageBasis, speech_ms: int, covered_ms: int) -> Coverage:
    # With no speech there is nothing to miss: ratio 1.0.
    ratio = round(covered_ms / speech_ms, 4) if speech_ms else 1.0
    return Coverage(basis=basis, speech_ms=speech_ms, covered_ms=covered_ms, ratio=ratio)


def _s(ms: int) -> str:
    return f"{ms / 1000:.1f} s"


def _range(start_ms: int, end_ms: int) -> str:
    return f"{start_ms / 1000:.1f}–{end_ms / 1000:.1f} s"

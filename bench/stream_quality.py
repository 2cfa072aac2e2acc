"""Stream transcripts against batch ones: the same recordings through ``bucketscribe stream`` and
``bucketscribe transcribe``, scored by word error rate against what was said.

Recordings, spoken by espeak-ng (``bucketscribe_local.scripted_speech``; without espeak-ng the
benchmark says so and stops):

- ``billing_call``: a stereo call at 8 kHz (telephone audio), agent left and customer right, the
  customer twice starting before the agent has finished, and an invoice number read out;
- ``reading``: a minute and a half of news read without long pauses at 16 kHz (the first
  paragraphs of ``texts/ten_minutes_en.txt``), where a stream has to cut sentences itself.

Each goes through, as a user runs them (subprocesses, the local emulators and Whisper base):

- the call: ``transcribe`` (default profile: the channels mixed), ``transcribe --profile calls``
  (each channel on its own), ``stream`` (mixed) and ``stream --channels split``;
- the reading: ``transcribe`` and ``stream``.

Scores: a mixed transcript against the script in the order the lines start; a split one per
channel against that speaker's lines, pooled (errors over words of both). Words are compared
lowercase without punctuation, digits spelled out ("4729" and "four seven two nine" are the same
words). Also shown per output: the ``language`` it says ran, whether it has ``coverage``, its
warnings, and the speaker labels.

Targets (issue 20): each stream within 0.05 of ``transcribe`` on the same recording and mode, and
the call at WER <= 0.30.

Run: ``.venv/bin/python bench/stream_quality.py``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

BENCH = Path(__file__).resolve().parent
MAX_GAP = 0.05
MAX_CALL_WER = 0.30
READING_PARAGRAPHS = 2
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


def spelled(text: str) -> str:
    """Digits as words, one word a digit ("4,729" -> "four seven two nine")."""
    text = re.sub(r"(?<=\d)[,.](?=\d)", "", text)
    return re.sub(r"\d", lambda m: f" {DIGITS[int(m.group())]} ", text)


def wer(reference: str, hypothesis: str) -> float:
    from bucketscribe_local.scoring import word_error_rate

    return word_error_rate(spelled(reference), spelled(hypothesis))


def pooled_wer(pairs: list[tuple[str, str]]) -> float:
    """Errors over reference words, summed over (reference, hypothesis) pairs."""
    errors = words = 0.0
    for reference, hypothesis in pairs:
        count = len(spelled(reference).split())
        errors += wer(reference, hypothesis) * count
        words += count
    return errors / words if words else 0.0


def run(command: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "BUCKETSCRIBE_DASHSCOPE_API_KEY": "", **(env or {})}
    return subprocess.run(command, capture_output=True, text=True, env=full, timeout=900, check=False)


def transcribe(path: Path, out: Path, profile: str | None) -> dict[str, Any]:
    command = [sys.executable, "-m", "bucketscribe.cli", "transcribe", str(path), "--out", str(out)]
    command += ["--output-format", "json", "--quiet"] + (["--profile", profile] if profile else [])
    done = run(command)
    if done.returncode != 0:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    found = [p for p in out.rglob(f"{path.name}.json")]
    return json.loads(found[0].read_text(encoding="utf-8"))


def stream(path: Path, out: Path, channels: str) -> dict[str, Any]:
    command = [sys.executable, "-m", "bucketscribe.cli", "stream", str(path), "--out", str(out)]
    command += ["--channels", channels, "--quiet"]
    done = run(command)
    if done.returncode != 0:
        return {"failed": f"exit {done.returncode}: {done.stderr.strip()[-500:]}"}
    return json.loads((out / f"{path.name}.json").read_text(encoding="utf-8"))


def score(
    transcript: dict[str, Any],
    mixed_reference: str,
    channel_references: list[str] | None,
    speakers: tuple[str, str],
) -> float:
    """WER of a mixed transcript against the script in order, or of a split one per channel (a
    segment's channel, or its speaker label where the provider gives no channel: SIS's roles)."""
    segments = transcript.get("segments", [])
    if channel_references is None:
        return wer(mixed_reference, " ".join(s["text"] for s in segments))

    def side(segment: dict[str, Any]) -> int | None:
        if segment.get("channel") is not None:
            return int(segment["channel"])
        return speakers.index(segment["speaker"]) if segment.get("speaker") in speakers else None

    return pooled_wer(
        [
            (reference, " ".join(s["text"] for s in segments if side(s) == channel))
            for channel, reference in enumerate(channel_references)
        ]
    )


def describe(transcript: dict[str, Any]) -> dict[str, Any]:
    coverage = transcript.get("coverage")
    return {
        "language": transcript.get("language"),
        "coverage": None if coverage is None else f"{coverage.get('basis')} {coverage.get('ratio')}",
        "warnings": [w.get("code") for w in transcript.get("warnings", [])],
        "speakers": sorted({s.get("speaker") for s in transcript.get("segments", []) if s.get("speaker")}),
        "segments": len(transcript.get("segments", [])),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    from bucketscribe_local.scripted_speech import (
        BILLING_CALL,
        Script,
        Utterance,
        can_speak,
        speak,
        speak_call,
    )

    if not can_speak():
        print("stream_quality: needs espeak-ng (apt-get install -y espeak-ng); nothing measured")
        return 0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-stream-quality-") as folder:
        work = Path(folder)
        call, spans = speak_call(BILLING_CALL, work / "billing_call.wav")
        in_order = [
            turn.text for _, turn in sorted(zip(spans, BILLING_CALL.turns, strict=True), key=lambda p: p[0])
        ]
        channels = [BILLING_CALL.channel_text(0), BILLING_CALL.channel_text(1)]
        paragraphs = [
            line
            for line in (BENCH / "texts" / "ten_minutes_en.txt").read_text(encoding="utf-8").splitlines()
            if line and not line.startswith("#")
        ][:READING_PARAGRAPHS]
        reading_script = Script(
            name="reading",
            utterances=tuple(Utterance(text=p, words_per_minute=170, pause_s=0.4) for p in paragraphs),
        )
        reading = speak(reading_script, work / "reading.wav")
        cases = [
            ("billing_call", "mix", call, " ".join(in_order), None, None, "mix"),
            ("billing_call", "split", call, " ".join(in_order), channels, "calls", "split"),
            ("reading", "mix", reading, reading_script.text, None, None, "mix"),
        ]
        for name, mode, path, mixed, per_channel, profile, stream_channels in cases:
            batch = transcribe(path, work / f"t-{name}-{mode}", profile)
            streamed = stream(path, work / f"s-{name}-{mode}", stream_channels)
            row: dict[str, Any] = {"recording": name, "mode": mode}
            for label, transcript in (("transcribe", batch), ("stream", streamed)):
                if "failed" in transcript:
                    row[label] = {"failed": transcript["failed"]}
                    continue
                figures = score(transcript, mixed, per_channel, BILLING_CALL.speakers)
                row[label] = {"wer": round(figures, 3), **describe(transcript)}
                row[label]["text"] = " ".join(s["text"] for s in transcript.get("segments", []))
            rows.append(row)
    result = {"rows": rows, "verdicts": verdicts(rows)}
    publish("stream_quality", result, quick=False, show=show)
    return (
        0 if all("failed" not in row["transcribe"] and "failed" not in row["stream"] for row in rows) else 1
    )


def verdicts(rows: list[dict[str, Any]]) -> list[str]:
    lines = []
    for row in rows:
        batch, streamed = row["transcribe"], row["stream"]
        tag = f"[{row['recording']}, {row['mode']}]"
        if "failed" in batch or "failed" in streamed:
            lines.append(
                f"{tag} FAILED: transcribe {batch.get('failed', 'ok')}; stream {streamed.get('failed', 'ok')}"
            )
            continue
        gap = streamed["wer"] - batch["wer"]
        lines.append(
            f"{tag} stream WER {streamed['wer']:.3f} vs transcribe {batch['wer']:.3f} (stream - transcribe "
            f"{gap:+.3f}, target <= {MAX_GAP}): {'met' if gap <= MAX_GAP else 'MISSED'}"
        )
        if row["recording"] == "billing_call":
            for label, figures in (("transcribe", batch), ("stream", streamed)):
                met = "met" if figures["wer"] <= MAX_CALL_WER else "MISSED"
                lines.append(f"{tag} {label} call WER {figures['wer']:.3f} (target <= {MAX_CALL_WER}): {met}")
    return lines


def show(result: dict[str, Any]) -> None:
    header = (
        f"{'recording':<14} {'mode':<6} {'output':<11} {'WER':>6} {'language':>8} {'coverage':<22} "
        f"{'speakers':<20} warnings"
    )
    print(header)
    print("-" * len(header))
    for row in result["rows"]:
        for label in ("transcribe", "stream"):
            figures = row[label]
            if "failed" in figures:
                print(f"{row['recording']:<14} {row['mode']:<6} {label:<11} FAILED {figures['failed']}")
                continue
            print(
                f"{row['recording']:<14} {row['mode']:<6} {label:<11} {figures['wer']:>6.3f} "
                f"{figures['language']!s:>8} {figures['coverage']!s:<22} "
                f"{'/'.join(figures['speakers']) or '-':<20} {','.join(figures['warnings']) or '-'}"
            )
    print()
    for line in result["verdicts"]:
        print(line)


if __name__ == "__main__":
    sys.exit(main())

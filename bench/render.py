"""Normalising and rendering long calls: a synthetic SIS result of 0.5, 1, 2 and 5 hours.

For each length, a deterministic synthetic SIS recording-file result is written as JSON, the
way a callback would deliver it: two roles (AGENT and USER) taking turns, a share of turns
where the next speaker starts before the previous one has finished, word timings without
punctuation (as SIS gives them) under a punctuated segment text. A child process then reads
the JSON, normalises it (``transcript_from_sis``) and renders every format (json, txt, srt,
vtt), timing each step (best of N runs in that process) and reporting its peak RSS.

The same child runs on this checkout's ``shared/`` and on the code of a git revision from
before the rendering rework (``--before``, extracted with ``git archive`` into a temporary
folder and put first on ``PYTHONPATH``), alternating, twice each per length; each figure is the
best of those runs, so the speed-up is a ratio measured side by side in one run.

Run: ``.venv/bin/python bench/render.py [--quick] [--before REV] [--repeats N]``
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from results_file import publish  # bench/ is on sys.path when run as a script

if TYPE_CHECKING:
    from bucketscribe.domain.profile import OutputFormat

ROOT = Path(__file__).resolve().parent.parent
HOURS = (0.5, 1.0, 2.0, 5.0)
QUICK_HOURS = (0.5, 1.0)
FORMATS: tuple[OutputFormat, ...] = ("json", "txt", "srt", "vtt")
# The last commit on main before the rendering rework (issue 9): the "before" figures.
BEFORE_REV = "98ac36725c56e747880f5c2f69698e2c1ebbe9cf"
ROUNDS = 2  # children per implementation and length, alternating
SEGMENTS_PER_HOUR = 800  # 4 000 segments in 5 hours, as in the issue
MEAN_WORDS_PER_SEGMENT = 15  # 60 000 words in 5 hours

_PHRASES = (
    "the account number is",
    "please hold while I check your order",
    "it was delivered yesterday but the box arrived damaged",
    "and I would like a refund or a replacement if possible",
    "thank you for calling our support line today",
    "can you confirm the address on file",
    "sure it is twelve north street",
    "we will send a courier tomorrow morning between nine and noon",
)
_VOCABULARY = " ".join(_PHRASES).split()


def synthetic_sis_result(hours: float, seed: int = 9) -> dict[str, Any]:
    """A SIS result of ``hours`` of a two-party call: turns, overlaps, pauses and word timings.

    About 240 ms a word, 15 words a segment and 0.1-0.7 s pauses fill the hours at 800
    segments an hour; 70 % of segments change speaker, and 30 % of those start 0.2-1.5 s
    before the other party has finished.
    """
    rng = random.Random(f"{seed}-{hours}")
    count = round(SEGMENTS_PER_HOUR * hours)
    segments: list[dict[str, Any]] = []
    role = "AGENT"
    next_start = 0
    for _ in range(count):
        start = next_start
        if segments and rng.random() < 0.7:
            role = "USER" if role == "AGENT" else "AGENT"
            if rng.random() < 0.3:
                # The other party starts before this one has finished (stereo call centre).
                previous = segments[-1]
                start = max(previous["start_time"], previous["end_time"] - rng.randint(200, 1500))
        length = max(2, round(rng.gauss(MEAN_WORDS_PER_SEGMENT, 5)))
        word_info: list[dict[str, Any]] = []
        text_words: list[str] = []
        at = start
        for index in range(length):
            word = rng.choice(_VOCABULARY)
            if index == 0:
                word = word.capitalize()
            duration = rng.randint(150, 330)
            word_info.append({"start_time": at, "end_time": at + duration, "word": word})
            at += duration + rng.choice((0, 0, 20, 40, 120))
            sentence_end = index == length - 1 or (index > 3 and rng.random() < 0.08)
            text_words.append(word + ("." if sentence_end else "," if rng.random() < 0.06 else ""))
        end = word_info[-1]["end_time"]
        segments.append(
            {
                "start_time": start,
                "end_time": end,
                "result": {
                    "text": " ".join(text_words),
                    "score": 0.9,
                    "analysis_info": {"role": role, "emotion": "NORMAL", "speed": 4.1},
                    "word_info": word_info,
                },
            }
        )
        next_start = max(next_start, end + rng.randint(100, 700))
    return {
        "job_id": f"bench-{hours}h",
        "status": "FINISHED",
        "audio_duration": max(segment["end_time"] for segment in segments),
        "segments": segments,
    }


# --- the child: one implementation, one length ---------------------------------------------


def measure(path: Path, repeats: int) -> dict[str, Any]:
    """Run in a child process: read, normalise and render ``path``; best time of ``repeats``."""
    import bucketscribe
    from bucketscribe.providers.sis.result import transcript_from_sis
    from bucketscribe.render import render

    baseline_mb = _peak_rss_mb()
    data = json.loads(path.read_text(encoding="utf-8"))
    best: dict[str, float] = {}
    sizes: dict[str, int] = {}

    def timed(name: str, started: float) -> None:
        elapsed = time.perf_counter() - started
        best[name] = min(best.get(name, elapsed), elapsed)

    for _ in range(repeats):
        started = time.perf_counter()
        transcript = transcript_from_sis(data)
        timed("normalise", started)
        for fmt in FORMATS:
            started = time.perf_counter()
            sizes[fmt] = len(render(transcript, fmt))
            timed(fmt, started)
        counts = {
            "segments": len(transcript.segments),
            "words": sum(len(segment.words) for segment in transcript.segments),
            "audio_hours": (transcript.duration_ms or 0) / 3_600_000,
        }
        del transcript  # so that the next run's transcript never lives beside this one
    return {
        "package": str(Path(bucketscribe.__file__).parent),
        **counts,
        "normalise_s": best["normalise"],
        "render_s": {fmt: best[fmt] for fmt in FORMATS},
        "output_chars": sizes,
        "baseline_rss_mb": baseline_mb,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_child(shared: Path, path: Path, repeats: int) -> dict[str, Any]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(shared)  # first on sys.path: ahead of the venv's editable install
    completed = subprocess.run(
        [sys.executable, __file__, "--child", str(path), "--repeats", str(repeats)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"child on {shared} failed:\n{completed.stderr}")
    result: dict[str, Any] = json.loads(completed.stdout.splitlines()[-1])
    if Path(result["package"]).resolve() != (shared / "bucketscribe").resolve():
        raise RuntimeError(f"child imported {result['package']}, not the code under {shared}")
    return result


def best_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest time of each step over the children's runs; the largest peak RSS."""
    best = dict(runs[0])
    best["normalise_s"] = min(run["normalise_s"] for run in runs)
    best["render_s"] = {fmt: min(run["render_s"][fmt] for run in runs) for fmt in FORMATS}
    best["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    return best


def extract_before(revision: str, into: Path) -> Path:
    """The ``shared/`` tree of ``revision``, unpacked from ``git archive`` into ``into``."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision, "shared/bucketscribe"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "shared"


# --- the parent: every length, both implementations ----------------------------------------


def run(hours: tuple[float, ...], repeats: int, before: str) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-render-") as tmp:
        old_shared = extract_before(before, Path(tmp) / "before")
        for length in hours:
            path = Path(tmp) / f"sis-{length}h.json"
            path.write_text(json.dumps(synthetic_sis_result(length)), encoding="utf-8")
            # Alternate the two children so that a change in the machine's load touches both.
            after: list[dict[str, Any]] = []
            old: list[dict[str, Any]] = []
            for _ in range(ROUNDS):
                after.append(run_child(ROOT / "shared", path, repeats))
                old.append(run_child(old_shared, path, repeats))
            rows.append(
                {
                    "hours": length,
                    "input_mb": path.stat().st_size / 1e6,
                    "after": best_of(after),
                    "before": best_of(old),
                }
            )
    for row in rows:
        for side in ("after", "before"):
            figures = row[side]
            figures["total_s"] = figures["normalise_s"] + sum(figures["render_s"].values())
            figures["s_per_hour"] = figures["total_s"] / row["hours"]
        row["speedup"] = row["before"]["total_s"] / row["after"]["total_s"]
    return {"before_revision": before, "repeats": repeats, "rows": rows}


def print_table(result: dict[str, Any]) -> None:
    header = ["hours", "segments", "words", "impl", "normalise", *FORMATS, "total s", "peak MB", "s/hour"]
    lines = [header]
    for row in result["rows"]:
        for side in ("before", "after"):
            figures = row[side]
            lines.append(
                [
                    f"{row['hours']:g}",
                    str(figures["segments"]),
                    str(figures["words"]),
                    side,
                    f"{figures['normalise_s']:.3f}",
                    *(f"{figures['render_s'][fmt]:.3f}" for fmt in FORMATS),
                    f"{figures['total_s']:.3f}",
                    f"{figures['peak_rss_mb']:.0f}",
                    f"{figures['s_per_hour']:.3f}",
                ]
            )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(
        f"normalise + render every format (seconds, best of {ROUNDS} × {result['repeats']}; before = "
        f"{result['before_revision'][:10]})"
    )
    for line in lines:
        print("  " + "  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)))
    print("\nspeed-up (before total ÷ after total), same run:")
    for row in result["rows"]:
        print(f"  {row['hours']:g} h: {row['speedup']:.1f}×")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 and 1 hour only, one run each")
    parser.add_argument("--repeats", type=int, help="runs per child, best kept (default 3; --quick 1)")
    parser.add_argument("--before", default=BEFORE_REV, help="git revision of the 'before' code")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    repeats = args.repeats or (1 if args.quick else 3)
    if args.child is not None:
        print(json.dumps(measure(args.child, repeats)))
        return 0
    result = run(QUICK_HOURS if args.quick else HOURS, repeats, args.before)
    publish("render", result, quick=bool(args.quick), show=print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

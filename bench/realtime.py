"""Many files through the real-time API at once, on the local engine: ``bucketscribe stream``
against the service's sample, both streaming to one DashScope emulator with the offline Whisper
engine (warmed up, in a process of its own), so that what is compared is the client a user runs
and what the local engine does with many streams at once.

The files are 10 s WAVs (two bundled samples, a pause between, silence to the end); where each
one's first utterance ends is found with the emulator's own voice activity (gummy's 700 ms end
silence). Runs (every client a subprocess, translating into English as the sample does):

- default (``make bench``): at 1x pace (a live source), 8 files and then 2, each streamed by
  ``bucketscribe stream FILES --concurrency K --translate en --json`` (one process, one SDK
  recognizer per file) and by the sample's layout with K processes (``realtime_pool_sample.py``:
  ``multiprocessing.Pool``, one ``TranslationRecognizerRealtime`` per file, 100 ms frames);
- ``--full`` adds 8 files as fast as the service takes them, and the sample with
  ``Pool(cpu_count())`` (as it runs on this machine) for each.

Per run: wall time (process start to exit), files/s, peak memory of the client's process tree
(PSS and summed RSS), each file's first-package delay as the SDK measures it (first frame sent to
first result, interim or final) against its first utterance's end, and each stream's real-time
factor (stream time over audio time: at 1x pace 1.0 means the last result came as the audio
ended). A client run that fails is reported as failed (its exit code, files done and the errors
it printed), never as 0 files/s. The machine's load average is printed before and after each run.

Targets (issue 20), each printed beside the baseline from the same run: 8 files at 1x, every
file's first package within its first utterance's end + 1.5 s, RTF <= 1.0 for every stream,
files/s at least Pool(8)'s; 2 files at 1x, within the first utterance's end + 1.0 s.

Run: ``.venv/bin/python bench/realtime.py [--full] [--engine whisper|digest]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import wave
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

BENCH = Path(__file__).resolve().parent
KEY = "sk-bench-realtime"
RATE = 16000
FILE_S = 10.0
GAP_S = 0.8
END_SILENCE_MS = 700  # gummy's default: how long a pause ends an utterance
SPEECH = ("hello_en.wav", "weather_en.ogg", "report_en.mp3", "demo_video.mp4")
# (files, pace) of each comparison, and what a file's first package may take beyond its first
# utterance's end there (issue 20).
QUICK_PLAN = ((8, "realtime"), (2, "realtime"))
FULL_PLAN = ((8, "realtime"), (2, "realtime"), (8, "fast"))
FIRST_PACKAGE_SLACK_MS = {8: 1500, 2: 1000}
CLIENT_TIMEOUT_S = 600


# ----- the emulator, in a process of its own -----------------------------------------------------


def serve_emulator(engine_name: str) -> int:
    """``--serve``: a DashScope emulator (Whisper, warmed up, or the digest engine) until stdin closes."""
    from bucketscribe_local.dashscope_server import DashScopeEmulator
    from bucketscribe_local.speech import SpeechEngine

    engine: SpeechEngine
    if engine_name == "digest":
        from bucketscribe_local.digest_engine import DigestSpeechEngine

        engine = DigestSpeechEngine()
    else:
        from bucketscribe_local.samples import sample
        from bucketscribe_local.whisper_engine import shared_engine

        engine = shared_engine()
        engine.recognize(sample("hello_en.wav").path)  # the model loads now, not during the first run
    with DashScopeEmulator(api_keys=[KEY], engine=engine) as emulator:
        print(json.dumps({"ws_url": emulator.ws_url}), flush=True)
        sys.stdin.read()
    return 0


class Emulator:
    def __init__(self, engine: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__)), "--serve", "--engine", engine],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.ws_url = json.loads(self.process.stdout.readline())["ws_url"]

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


# ----- the files ---------------------------------------------------------------------------------------


def make_files(folder: Path, count: int) -> list[tuple[Path, int]]:
    """``count`` WAVs of FILE_S s (two samples, a pause between), each with where its first utterance ends."""
    from bucketscribe_local.emulator_kit.voice_activity import VoiceActivity
    from bucketscribe_local.samples import sample

    from bucketscribe.media.transcode import decode_pcm16

    tracks = [decode_pcm16(sample(name).path).tracks[0] for name in SPEECH]
    pairs = [(a, b) for a in range(len(tracks)) for b in range(len(tracks)) if a != b]
    files = []
    total = int(FILE_S * RATE) * 2
    for index in range(count):
        first, second = pairs[index % len(pairs)]
        pcm = (tracks[first] + bytes(int(GAP_S * RATE) * 2) + tracks[second])[:total]
        pcm += bytes(total - len(pcm))
        path = folder / f"speech{index + 1:02d}.wav"
        with wave.open(str(path), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm)
        voice = VoiceActivity(RATE, end_silence_ms=END_SILENCE_MS)
        ended = voice.scan(pcm) or [u for u in [voice.close(int(FILE_S * 1000))] if u]
        files.append((path, ended[0].end_ms))
    return files


# ----- memory of a process tree ---------------------------------------------------------------------


def _tree(root: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        parents.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(parents.get(pid, []))
    return found


def _kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            for line in rollup:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the PSS and RSS sums of a process and its descendants every 100 ms; keeps the peaks."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_pss_kib = 0
        self.peak_rss_kib = 0
        self.peak_processes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            pids = _tree(self.root)
            self.peak_pss_kib = max(self.peak_pss_kib, sum(_kib(p, "Pss") for p in pids))
            self.peak_rss_kib = max(self.peak_rss_kib, sum(_kib(p, "Rss") for p in pids))
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop.wait(0.1)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# ----- the clients ---------------------------------------------------------------------------------


def run_client(command: list[str], env: dict[str, str]) -> tuple[float, str, str, TreeMemory, int]:
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    memory = TreeMemory(process.pid)
    try:
        out, err = process.communicate(timeout=CLIENT_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        err += f"\n(killed after {CLIENT_TIMEOUT_S} s)"
    wall = time.monotonic() - started
    memory.stop()
    return wall, out, err, memory, process.returncode


def stream_client(files: list[Path], ws_url: str, pace: str, out_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "BUCKETSCRIBE_DASHSCOPE_API_KEY": KEY, "BUCKETSCRIBE_DASHSCOPE_WS_URL": ws_url}
    command = [sys.executable, "-m", "bucketscribe.cli", "stream", *map(str, files)]
    command += ["--concurrency", str(len(files)), "--translate", "en", "--json", "--pace", pace]
    command += ["--out", str(out_dir)]
    load = os.getloadavg()[0]
    wall, out, err, memory, code = run_client(command, env)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    first_result: dict[str, float] = {}
    for event in events:
        if event["event"] in ("interim", "sentence"):
            first_result.setdefault(event["file"], event["elapsed_s"])
    metrics = [e for e in events if e["event"] == "metrics"]
    files_done = [e for e in events if e["event"] == "file" and e["state"] == "done"]
    errors = [
        f"{e['file']}: {e.get('error_code')}: {e.get('error')}"
        for e in events
        if e["event"] == "file" and e["state"] == "failed"
    ]
    return _figures(
        f"bucketscribe stream (--concurrency {len(files)})",
        "stream",
        pace,
        wall,
        memory,
        code,
        len(files_done),
        {e["file"]: e["first_package_ms"] for e in metrics},
        {e["file"]: e["realtime_factor"] for e in metrics},
        first_result,
        errors or _last_lines(err) if code else errors,
        load,
    )


def pool_client(files: list[Path], ws_url: str, pace: str, processes: int, label: str) -> dict[str, Any]:
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_WEBSOCKET_URL": ws_url}
    command = [sys.executable, str(BENCH / "realtime_pool_sample.py"), "--processes", str(processes)]
    command += ["--pace", pace, *map(str, files)]
    load = os.getloadavg()[0]
    wall, out, err, memory, code = run_client(command, env)
    rows = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("FIGURES ")]
    ok = [r for r in rows if not r.get("error") and (r.get("last_package_ms") or -1) >= 0]
    first_package = {
        r["file"]: r["first_package_ms"] if (r.get("first_package_ms") or -1) >= 0 else None for r in rows
    }
    factors = {r["file"]: round(r["elapsed_s"] / r["audio_s"], 3) for r in ok if r.get("audio_s")}
    first_result = {
        r["file"]: r["first_result_after_s"] for r in ok if r.get("first_result_after_s") is not None
    }
    errors = [f"{r['file']}: {r['error']}" for r in rows if r.get("error")]
    if code and not errors:
        errors = _last_lines(err)
    figures = _figures(
        label, "pool", pace, wall, memory, code, len(ok), first_package, factors, first_result, errors, load
    )
    # Starts the SDK reported as failed and the sample tried again (realtime_pool_sample.py).
    figures["start_retries"] = sum(r.get("start_retries") or 0 for r in rows)
    return figures


def _last_lines(text: str, count: int = 3) -> list[str]:
    return [line for line in text.strip().splitlines() if line.strip()][-count:]


def _figures(
    client: str,
    kind: str,
    pace: str,
    wall: float,
    memory: TreeMemory,
    code: int,
    done: int,
    first_package: dict[str, float | None],
    factors: dict[str, float | None],
    first_result: dict[str, float],
    errors: list[str],
    load_before: float,
) -> dict[str, Any]:
    delays = sorted(v for v in first_package.values() if v is not None)
    waits = sorted(first_result.values())
    return {
        "client": client,
        "kind": kind,
        "pace": pace,
        "exit_code": code,
        "files_done": done,
        "files": len(first_package) if first_package else None,
        "failed": bool(code) or bool(errors),
        "errors": errors,
        "wall_s": round(wall, 2),
        "files_per_s": round(done / wall, 3) if wall and not (code or errors) else None,
        "peak_pss_mb": round(memory.peak_pss_kib / 1024, 1),
        "peak_rss_mb": round(memory.peak_rss_kib / 1024, 1),
        "processes": memory.peak_processes,
        "first_package_ms": first_package,
        "first_package_median_ms": round(statistics.median(delays)) if delays else None,
        "first_package_p95_ms": round(percentile(delays, 0.95)) if delays else None,
        "realtime_factor": factors,
        "realtime_factor_max": max((f for f in factors.values() if f is not None), default=None),
        "first_result_median_s": round(statistics.median(waits), 2) if waits else None,
        "first_result_p95_s": round(percentile(waits, 0.95), 2) if waits else None,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with 8 values p95 is the largest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


# ----- the verdicts -----------------------------------------------------------------------------------


def verdicts(runs: list[dict[str, Any]], utterance_ms: dict[str, int]) -> list[str]:
    """Each target of issue 20, met or not, beside the baseline of the same run. A figure that was
    not measured (a failed run) is not met; a failed baseline is said to be failed."""
    lines = []
    groups = sorted({(r["files_in_run"], r["pace"]) for r in runs}, key=lambda g: (g[1] != "realtime", -g[0]))
    for count, pace in groups:
        mine = [r for r in runs if (r["files_in_run"], r["pace"]) == (count, pace)]
        ours = next(r for r in mine if r["kind"] == "stream")
        pool = next(r for r in mine if r["client"].startswith(f"sample Pool({count})"))
        tag = f"[{count} files, {pace}]"
        for run in (ours, pool):
            if run["failed"]:
                lines.append(
                    f"{tag} {run['client']} FAILED (exit {run['exit_code']}, {run['files_done']} of "
                    f"{count} done): {'; '.join(run['errors'])}"
                )
        if pool["failed"]:
            lines.append(f"{tag} files/s {ours['files_per_s']}; the baseline failed: no comparison")
        else:
            met = _verdict(_at_most(pool["files_per_s"], ours["files_per_s"]))
            lines.append(
                f"{tag} files/s {ours['files_per_s']} vs {pool['client']} {pool['files_per_s']}: {met}"
            )
        if pace != "realtime":
            continue
        slack = FIRST_PACKAGE_SLACK_MS.get(count, 1000)
        for label, run in (("stream", ours), ("pool", pool)):
            limits = {name: utterance_ms[name] + slack for name in run["first_package_ms"]}
            late = {
                name: (ms, limits[name])
                for name, ms in run["first_package_ms"].items()
                if not _at_most(ms, limits[name])
            }
            within = len(limits) - len(late)
            lines.append(
                f"{tag} {label}: first package within the first utterance's end + {slack / 1000:g} s "
                f"for {within} of {count} files: "
                + ("met" if within == count else f"MISSED {late} (delay ms, limit ms)")
            )
        if count == 8:
            factors = ours["realtime_factor"]
            over = {name: f for name, f in factors.items() if f is None or f > 1.0}
            lines.append(
                f"{tag} real-time factor per stream: max {ours['realtime_factor_max']} "
                f"(pool: max {pool['realtime_factor_max']}), <= 1.0 for {len(factors) - len(over)} "
                f"of {count}: " + ("met" if len(factors) == count and not over else f"MISSED {over}")
            )
    return lines


def _at_most(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value <= limit


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def show(result: dict[str, Any]) -> None:
    ends = result["first_utterance_ms"].values()
    print(
        f"\n10 s files (first utterances end at {min(ends) / 1000:.1f}-{max(ends) / 1000:.1f} s), "
        f"one emulator process ({result['engine']} engine), {result['machine']['cpus']} CPUs\n"
    )
    header = (
        f"{'client':<36} {'files':>5} {'pace':<8} {'wall s':>7} {'files/s':>8} {'PSS MB':>7} {'RSS MB':>7} "
        f"{'1st pkg med/p95 ms':>19} {'RTF max':>7} {'load':>9}"
    )
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        speed = "FAILED" if run["failed"] else f"{run['files_per_s']:.3f}"
        factor = "-" if run["realtime_factor_max"] is None else f"{run['realtime_factor_max']:.2f}"
        print(
            f"{run['client']:<36} {run['files_in_run']:>5} {run['pace']:<8} {run['wall_s']:>7.1f} {speed:>8} "
            f"{run['peak_pss_mb']:>7.0f} {run['peak_rss_mb']:>7.0f} "
            f"{str(run['first_package_median_ms']) + '/' + str(run['first_package_p95_ms']):>19} "
            f"{factor:>7} {run['load_before']:>4}/{run['load_after']:<4}"
            + ("" if not run["failed"] else f"  ({run['files_done']} done, exit {run['exit_code']})")
            + (f"  ({run['start_retries']} SDK start retries)" if run.get("start_retries") else "")
        )
    print()
    for line in result["verdicts"]:
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--full",
        action="store_true",
        help="also 8 files as fast as the service takes them, and Pool(cpu_count())",
    )
    parser.add_argument("--quick", action="store_true", help="(the default; kept for older scripts)")
    parser.add_argument(
        "--engine",
        choices=["whisper", "digest"],
        default="whisper",
        help="the emulator's speech engine: Whisper (the figures), or the instant digest engine, which "
        "takes recognition out and leaves the clients and the protocol",
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve_emulator(args.engine)
    plan = FULL_PLAN if args.full else QUICK_PLAN
    cpus = os.cpu_count() or 1
    emulator = Emulator(args.engine)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-realtime-") as folder:
            made = make_files(Path(folder), max(count for count, _ in plan))
            utterance_ms = {path.name: end for path, end in made}
            for count, pace in plan:
                files = [path for path, _ in made[:count]]
                out = Path(folder) / f"out-{count}-{pace}"
                pools = [(count, f"sample Pool({count})")]
                if args.full and cpus != count:
                    pools.append((cpus, f"sample Pool(cpu_count()={cpus})"))
                runs.append({**stream_client(files, emulator.ws_url, pace, out), "files_in_run": count})
                for processes, label in pools:
                    run = pool_client(files, emulator.ws_url, pace, processes, label)
                    runs.append({**run, "files_in_run": count})
    finally:
        emulator.stop()
    result = {
        "engine": args.engine,
        "first_utterance_ms": utterance_ms,
        "runs": runs,
        "verdicts": verdicts(runs, utterance_ms),
    }
    publish(
        "realtime" if args.engine == "whisper" else "realtime_digest", result, quick=not args.full, show=show
    )
    return 0 if not any(r["failed"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

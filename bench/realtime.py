"""Many files through the real-time API at once: ``bucketscribe stream`` against the service's sample.

K files of about 10 s of speech (pairs of the bundled samples, a pause between) go through one
DashScope emulator with the real speech engine (Whisper), which runs in a process of its own, so
that what is compared is the client a user runs:

- ``bucketscribe stream FILES --concurrency K --translate en --json``: one process, one thread
  and one SDK recognizer per file;
- the service sample's approach (``realtime_pool_sample.py``): ``multiprocessing.Pool(cpu_count())``,
  one process per file at a time, one SDK recognizer each, 100 ms frames; and the same pool with
  K processes (the sample as it runs on a K-core machine), for scale.

Each runs with ``--pace realtime`` (1x, as a live source) and without (as fast as the service
takes the audio). Reported: wall time, files/s, the peak memory of the client's process tree (PSS,
which shares out the pages forked processes have in common, and RSS summed), the first-package
delay as the SDK measures it (first frame sent → first result, median and p95), and the wait a
user has from the start of the run to each file's first result. Targets (issue 11): files/s at
least the pool's at a third of its client memory or less; first-package delay no worse than the
pool's; with ``--pace realtime`` at most the first utterance's length plus 1 s.

Run: ``.venv/bin/python bench/realtime.py [--quick] [--files K]``
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


# ----- the two clients ---------------------------------------------------------------------------------


def run_client(command: list[str], env: dict[str, str]) -> tuple[float, str, TreeMemory, int]:
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    memory = TreeMemory(process.pid)
    out, err = process.communicate(timeout=900)
    wall = time.monotonic() - started
    memory.stop()
    if process.returncode != 0:
        sys.stderr.write(err[-3000:])
    return wall, out, memory, process.returncode


def stream_client(files: list[Path], ws_url: str, pace: str, out_dir: Path) -> dict[str, Any]:
    env = {**os.environ, "BUCKETSCRIBE_DASHSCOPE_API_KEY": KEY, "BUCKETSCRIBE_DASHSCOPE_WS_URL": ws_url}
    command = [sys.executable, "-m", "bucketscribe.cli", "stream", *map(str, files)]
    command += ["--concurrency", str(len(files)), "--translate", "en", "--json", "--pace", pace]
    command += ["--out", str(out_dir)]
    wall, out, memory, code = run_client(command, env)
    events = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    first_result: dict[str, float] = {}
    for event in events:
        if event["event"] in ("interim", "sentence"):
            first_result.setdefault(event["file"], event["elapsed_s"])
    metrics = [e for e in events if e["event"] == "metrics"]
    done = sum(1 for e in events if e["event"] == "file" and e["state"] == "done")
    return _figures(
        f"bucketscribe stream (--concurrency {len(files)})",
        pace,
        wall,
        memory,
        code,
        done,
        {e["file"]: e["first_package_ms"] for e in metrics},
        first_result,
    )


def pool_client(files: list[Path], ws_url: str, pace: str, processes: int, label: str) -> dict[str, Any]:
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY, "DASHSCOPE_WEBSOCKET_URL": ws_url}
    command = [sys.executable, str(BENCH / "realtime_pool_sample.py"), "--processes", str(processes)]
    command += ["--pace", pace, *map(str, files)]
    wall, out, memory, code = run_client(command, env)
    rows = [json.loads(line.split(" ", 1)[1]) for line in out.splitlines() if line.startswith("FIGURES ")]
    first_package = {r["file"]: r["first_package_ms"] if r["first_package_ms"] >= 0 else None for r in rows}
    first_result = {
        r["file"]: r["first_result_after_s"] for r in rows if r["first_result_after_s"] is not None
    }
    done = sum(1 for r in rows if r["last_package_ms"] is not None and r["last_package_ms"] >= 0)
    return _figures(label, pace, wall, memory, code, done, first_package, first_result)


def _figures(
    client: str,
    pace: str,
    wall: float,
    memory: TreeMemory,
    code: int,
    done: int,
    first_package: dict[str, float | None],
    first_result: dict[str, float],
) -> dict[str, Any]:
    delays = sorted(v for v in first_package.values() if v is not None)
    waits = sorted(first_result.values())
    return {
        "client": client,
        "pace": pace,
        "exit_code": code,
        "files_done": done,
        "wall_s": round(wall, 2),
        "files_per_s": round(done / wall, 3) if wall else None,
        "peak_pss_mb": round(memory.peak_pss_kib / 1024, 1),
        "peak_rss_mb": round(memory.peak_rss_kib / 1024, 1),
        "processes": memory.peak_processes,
        "first_package_ms": first_package,
        "first_package_median_ms": round(statistics.median(delays)) if delays else None,
        "first_package_p95_ms": round(percentile(delays, 0.95)) if delays else None,
        "first_result_median_s": round(statistics.median(waits), 2) if waits else None,
        "first_result_p95_s": round(percentile(waits, 0.95), 2) if waits else None,
    }


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile (no interpolation: with 8 values p95 is the largest)."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(fraction * len(ordered))) - 1]


# ----- the verdicts -----------------------------------------------------------------------------------


def verdicts(runs: list[dict[str, Any]], utterance_ms: dict[str, int]) -> list[str]:
    """Each target of issue 11, met or not, from the figures (a figure not measured is not met)."""
    lines = []
    for pace in ("fast", "realtime"):
        ours = next(r for r in runs if r["pace"] == pace and r["client"].startswith("bucketscribe"))
        pool = next(r for r in runs if r["pace"] == pace and r["client"].startswith("sample Pool(cpu"))
        speed = _at_most(pool["files_per_s"], ours["files_per_s"])
        memory = _at_most(ours["peak_pss_mb"] * 3, pool["peak_pss_mb"])
        delay = _at_most(ours["first_package_median_ms"], pool["first_package_median_ms"]) and _at_most(
            ours["first_package_p95_ms"], pool["first_package_p95_ms"]
        )
        ours_delay = f"{ours['first_package_median_ms']}/{ours['first_package_p95_ms']}"
        pool_delay = f"{pool['first_package_median_ms']}/{pool['first_package_p95_ms']}"
        ours_wait = f"{ours['first_result_median_s']}/{ours['first_result_p95_s']}"
        pool_wait = f"{pool['first_result_median_s']}/{pool['first_result_p95_s']}"
        lines.append(
            f"[{pace}] files/s {ours['files_per_s']} vs pool {pool['files_per_s']}: {_verdict(speed)}; "
            f"memory (PSS) {ours['peak_pss_mb']} MB vs pool {pool['peak_pss_mb']} MB "
            f"(target <= {pool['peak_pss_mb'] / 3:.0f} MB): {_verdict(memory)}; "
            f"first package median/p95 {ours_delay} ms vs pool {pool_delay} ms: {_verdict(delay)} "
            f"(the wait from the start to a file's first result: {ours_wait} s vs {pool_wait} s)"
        )
        if pace == "realtime":
            late = {
                name: (ms, utterance_ms[name] + 1000)
                for name, ms in ours["first_package_ms"].items()
                if not _at_most(ms, utterance_ms[name] + 1000)
            }
            lines.append(
                f"[realtime] first package within the first utterance + 1 s for "
                f"{len(ours['first_package_ms']) - len(late)} of {len(ours['first_package_ms'])} files: "
                + ("met" if not late else f"MISSED for {late} (delay ms, limit ms)")
            )
    return lines


def _at_most(value: float | None, limit: float | None) -> bool:
    return value is not None and limit is not None and value <= limit


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


def show(result: dict[str, Any]) -> None:
    ends = result["first_utterance_ms"].values()
    print(
        f"\n{result['files']} files of {FILE_S:g} s (first utterances end at "
        f"{min(ends) / 1000:.1f}-{max(ends) / 1000:.1f} s), "
        f"one emulator process ({result['engine']} engine), {result['machine']['cpus']} CPUs\n"
    )
    header = (
        f"{'client':<38} {'pace':<8} {'wall s':>7} {'files/s':>8} {'PSS MB':>7} {'RSS MB':>7} {'procs':>5} "
        f"{'1st pkg med/p95 ms':>19} {'1st result med/p95 s':>21}"
    )
    print(header)
    print("-" * len(header))
    for run in result["runs"]:
        print(
            f"{run['client']:<38} {run['pace']:<8} {run['wall_s']:>7.1f} {run['files_per_s']:>8.3f} "
            f"{run['peak_pss_mb']:>7.0f} {run['peak_rss_mb']:>7.0f} {run['processes']:>5} "
            f"{str(run['first_package_median_ms']) + '/' + str(run['first_package_p95_ms']):>19} "
            f"{str(run['first_result_median_s']) + '/' + str(run['first_result_p95_s']):>21}"
            + (
                ""
                if run["files_done"] == result["files"]
                else f"  ({run['files_done']} done, exit {run['exit_code']})"
            )
        )
    print()
    for line in result["verdicts"]:
        print(line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=8, help="K: files streamed at once (default 8)")
    parser.add_argument("--quick", action="store_true", help="4 files, no K-process pool run")
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
    count = 4 if args.quick else args.files
    cpus = os.cpu_count() or 1
    emulator = Emulator(args.engine)
    runs: list[dict[str, Any]] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-realtime-") as folder:
            made = make_files(Path(folder), count)
            files = [path for path, _ in made]
            utterance_ms = {path.name: end for path, end in made}
            for pace in ("fast", "realtime"):
                runs.append(stream_client(files, emulator.ws_url, pace, Path(folder) / f"out-{pace}"))
                runs.append(
                    pool_client(files, emulator.ws_url, pace, cpus, f"sample Pool(cpu_count()={cpus})")
                )
                if not args.quick and cpus != count:
                    runs.append(
                        pool_client(files, emulator.ws_url, pace, count, f"sample Pool({count}), for scale")
                    )
    finally:
        emulator.stop()
    result = {
        "files": count,
        "engine": args.engine,
        "first_utterance_ms": utterance_ms,
        "runs": runs,
        "verdicts": verdicts(runs, utterance_ms),
    }
    publish(
        "realtime" if args.engine == "whisper" else "realtime_digest", result, quick=args.quick, show=show
    )
    return 0 if all(r["files_done"] == count for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())

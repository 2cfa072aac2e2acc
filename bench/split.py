"""Cutting recordings over a provider's limits into parts: time and peak memory against length.

Each case runs in a fresh process: the upload is probed, routed for SIS as the pipeline does
(``media.routing``), cut at quiet places (``pipeline.parts.cut_points``) and its parts written
through ``media.bucket.BucketMedia`` (streamed decode/encode, one temporary file per part), and
the process's peak RSS is read at the end, next to what it was before the work started. Two
kinds of upload:

- 8 kHz mono 16-bit WAV under an 8 kHz SIS profile: the parts hold the same samples (no
  re-encoding), at most 5 h and 300 MB each;
- 44.1 kHz stereo 16-bit WAV under the default 16 kHz profile: re-encoded as the router chooses
  (16 kHz mono PCM, or Opus where that saves a cut).

The inputs are silent WAVs written sparse (no disk for the silence) with a second of tone every
minute, so the quiet-place search has something to avoid. The bucket is a local folder whose
"presigned URL" is the file's path (the same PyAV calls; range requests over HTTP are covered by
tests/integration/test_media_making.py).

Run: ``.venv/bin/python bench/split.py [--quick]`` (``--quick``: 6 and 12 h of 8 kHz only).
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

# Lengths over SIS's 5 h (or, re-encoded, its 300 MB), and a 1 h re-encode for scale.
FULL_CASES = (
    ("8k-mono", 6),
    ("8k-mono", 12),
    ("8k-mono", 24),
    ("44k-stereo", 1),
    ("44k-stereo", 3),
    ("44k-stereo", 6),
)
QUICK_CASES = (("8k-mono", 6), ("8k-mono", 12))
KINDS = {"8k-mono": (8000, 1, "chinese_8k_general"), "44k-stereo": (44_100, 2, "chinese_16k_media")}


def sparse_wav(path: Path, *, hours: float, rate: int, channels: int) -> None:
    """Silence written as a hole, and one second of 440 Hz every minute."""
    frames = round(hours * 3600 * rate)
    block = channels * 2
    data = frames * block
    header = b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt "
    header += struct.pack("<IHHIIHH", 16, 1, channels, rate, rate * block, block, 16)
    header += b"data" + struct.pack("<I", min(data, 0xFFFFFFFF))
    tone = b"".join(
        struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels for i in range(rate)
    )
    with path.open("wb") as out:
        out.write(header)
        for minute in range(int(hours * 60)):
            out.seek(len(header) + (minute * 60 + 30) * rate * block)
            out.write(tone)
        out.truncate(len(header) + data)


class LocalFolder:
    """Just what BucketMedia uses of the storage port, over a folder."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        return str(self.root / key)

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        (self.root / key).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(src, self.root / key)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(kind: str, hours: float) -> dict[str, Any]:
    """One case, in this (fresh) process."""
    from pydantic import SecretStr

    from bucketscribe.domain.media_routing import decide_route
    from bucketscribe.domain.upload import ObjectRef
    from bucketscribe.media.bucket import BucketMedia
    from bucketscribe.pipeline.steps.parts import cut_points
    from bucketscribe.providers.registry import load_profiles
    from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider
    from bucketscribe.providers.sis.options import SisOptions

    rate, channels, model = KINDS[kind]
    sis = SisProvider(SisCredentials(ak="-", sk=SecretStr("-"), project_id="-"))
    (profile,) = load_profiles([{"sis": SisOptions(property=model).model_dump()}]).profiles
    needs = sis.media_requirements(profile)
    with tempfile.TemporaryDirectory(prefix="bench-split-") as tmp:
        root = Path(tmp)
        (root / "incoming").mkdir()
        sparse_wav(root / "incoming/long.wav", hours=hours, rate=rate, channels=channels)
        size = (root / "incoming/long.wav").stat().st_size
        source = ObjectRef(bucket="b", key="incoming/long.wav", size=size)
        tools = BucketMedia(LocalFolder(root), workdir=root)  # type: ignore[arg-type]
        before = peak_rss_mb()
        started = time.perf_counter()
        probe = tools.probe(source)
        decision = decide_route(probe, needs)
        assert decision.target is not None and probe.duration_ms is not None, decision.reason
        # One job's worth is written whole; more is cut as the pipeline cuts it.
        bounds = (
            cut_points(source, probe.duration_ms, decision.part_ms, tools)
            if decision.part_ms
            else [(0, None)]
        )
        parts = [
            tools.write(
                source, f"parts/{index}.{decision.target.extension}", decision.target, start_ms=a, end_ms=b
            )
            for index, (a, b) in enumerate(bounds)
        ]
        seconds = time.perf_counter() - started
    return {
        "kind": kind,
        "hours": hours,
        "input_mb": round(size / 2**20),
        "route": decision.route.value,
        "written_as": f"{decision.target.codec or 'copy'} {decision.target.sample_rate or ''}".strip(),
        "parts": len(parts),
        "part_hours": [round(p.duration_ms / 3_600_000, 2) for p in parts],
        "part_mb": [round(p.output_bytes / 2**20) for p in parts],
        "seconds": round(seconds, 1),
        "x_realtime": round(hours * 3600 / seconds),
        "rss_before_mb": round(before),
        "peak_rss_mb": round(peak_rss_mb()),
    }


def print_table(result: dict[str, Any]) -> None:
    print("Long uploads cut into SIS-sized parts: each case in a fresh process")
    print(
        f"  {'upload':<12} {'hours':>5} {'input MB':>9} {'route → written as':<32} {'parts (h)':<20} "
        f"{'s':>6} {'×RT':>6} {'RSS before':>10} {'peak RSS':>9}"
    )
    for row in result["cases"]:
        how = f"{row['route']} → {row['written_as']}"
        parts = " + ".join(f"{h:g}" for h in row["part_hours"])
        print(
            f"  {row['kind']:<12} {row['hours']:>5g} {row['input_mb']:>9,} {how:<32} {parts:<20} "
            f"{row['seconds']:>6.1f} {row['x_realtime']:>6,} "
            f"{row['rss_before_mb']:>8} MB {row['peak_rss_mb']:>6} MB"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="6 and 12 h of 8 kHz mono only")
    parser.add_argument("--case", nargs=2, metavar=("KIND", "HOURS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], float(args.case[1]))))
        return 0
    cases = []
    for kind, hours in QUICK_CASES if args.quick else FULL_CASES:
        done = subprocess.run(
            [sys.executable, __file__, "--case", kind, str(hours)], check=True, capture_output=True, text=True
        )
        cases.append(json.loads(done.stdout.strip().splitlines()[-1]))
    publish("split", {"cases": cases}, quick=bool(args.quick), show=print_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())

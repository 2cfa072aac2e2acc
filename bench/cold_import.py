"""Cold-import cost of the function entry points, next to the SDKs they avoid loading up front.

Every figure comes from fresh interpreter processes (the venv's Python, as Lambda would start
one), run round-robin so that drift in the machine's load touches every row alike. For each
row: the median wall time of the whole process and the median time of the import statement
itself, measured inside the child. Then the checks that the heavy SDKs stay lazy: after the
submit and callback entry points (Lambda and FunctionGraph) are imported, ``huaweicloudsdksis``,
``dashscope`` and ``av`` are not in ``sys.modules``. Last, ``-X importtime`` of the submit entry
point, summed per top-level package, to show where its import time goes.

Each deployed entry point's import is set beside ``import boto3`` from the same run: the target
is at most 1.25x (a function's cold start should cost little more than the SDK it calls).
The children get the deployed functions' ``PYDANTIC_DISABLE_PLUGINS=1`` (serverless.yml,
infra/huawei/locals.tf).

Run: ``.venv/bin/python bench/cold_import.py [--quick] [--runs N]`` (default 7 runs; --quick 3).
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any

from results_file import publish  # bench/ is on sys.path when run as a script

ENTRY_POINTS = (
    "bucketscribe.clouds.aws.submit",
    "bucketscribe.clouds.aws.callback",
    "bucketscribe.clouds.huawei.functiongraph.submit",
    "bucketscribe.clouds.huawei.functiongraph.callback",
)
ROWS: tuple[tuple[str, str], ...] = (
    ("interpreter only (pass)", "pass"),
    *((f"import {module}", f"import {module}") for module in ENTRY_POINTS),
    ("import boto3", "import boto3"),
    ("import huaweicloudsdksis.v1", "import huaweicloudsdksis.v1"),
    ("import dashscope", "import dashscope"),
)
# The most an entry point's import may cost, as a multiple of ``import boto3`` measured beside it.
TARGET_RATIO = 1.25
MUST_STAY_LAZY = ("huaweicloudsdksis", "dashscope", "av")
REPORTED_MODULES = (
    *MUST_STAY_LAZY,
    "huaweicloudsdkcore",
    "faster_whisper",
    "ctranslate2",
    "numpy",
    "moto",
    "boto3",
)
# The child times its own import statement and reports it on its last line of output.
CHILD = "import time\nstarted = time.perf_counter()\n{statement}\nprint(time.perf_counter() - started)\n"


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the project is installed in the venv; measure that
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYDANTIC_DISABLE_PLUGINS"] = "1"  # as every deployed function's environment sets it
    return env


def run_once(statement: str) -> tuple[float, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", CHILD.format(statement=statement)],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        check=True,
    )
    wall = time.perf_counter() - started
    return wall, float(done.stdout.strip().splitlines()[-1])


def measure(runs: int) -> list[dict[str, Any]]:
    # One untimed pass first: compiles .pyc files and warms the page cache, as a Lambda
    # deployment package has both before its first cold start.
    for _, statement in ROWS:
        run_once(statement)
    walls: dict[str, list[float]] = defaultdict(list)
    imports: dict[str, list[float]] = defaultdict(list)
    for _ in range(runs):
        for label, statement in ROWS:
            wall, imported = run_once(statement)
            walls[label].append(wall)
            imports[label].append(imported)
    return [
        {
            "what": label,
            "process_wall_ms_median": round(statistics.median(walls[label]) * 1000, 1),
            "import_ms_median": round(statistics.median(imports[label]) * 1000, 1),
            "import_ms_min": round(min(imports[label]) * 1000, 1),
            "import_ms_max": round(max(imports[label]) * 1000, 1),
        }
        for label, _ in ROWS
    ]


def loaded_modules(entry_point: str) -> dict[str, bool]:
    """Which of the reported packages are in sys.modules after importing ``entry_point``."""
    modules = list(REPORTED_MODULES)
    probe = (
        f"import json, sys\nimport {entry_point}\n"
        f"print(json.dumps({{m: m in sys.modules for m in {modules!r}}}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, env=child_env(), check=True
    )
    loaded: dict[str, bool] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


def import_time_by_package(entry_point: str, top: int) -> list[dict[str, Any]]:
    """``-X importtime``'s self times summed per top-level package, largest first."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {entry_point}"],
        capture_output=True,
        text=True,
        timeout=60,
        env=child_env(),
        check=True,
    )
    per_package: dict[str, int] = defaultdict(int)
    for line in done.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        # "import time:  <self us> | <cumulative us> | <indent><module>"
        own, _, name = line.split("|")
        per_package[name.strip().split(".")[0]] += int(own.split(":")[1])
    ranked = sorted(per_package.items(), key=lambda item: item[1], reverse=True)
    total = sum(per_package.values())
    rows = [{"package": name, "self_ms": round(us / 1000, 1)} for name, us in ranked[:top]]
    rows.append({"package": "(all, summed self time)", "self_ms": round(total / 1000, 1)})
    return rows


def print_table(result: dict[str, Any]) -> None:
    print(f"cold imports: fresh processes, median of {result['runs']} (Python {result['machine']['python']})")
    width = max(len(label) for label, _ in ROWS)
    print(f"  {'what':<{width}} {'process ms':>10} {'import ms':>10} {'min–max ms':>14}")
    for row in result["rows"]:
        spread = f"{row['import_ms_min']:.0f}–{row['import_ms_max']:.0f}"
        wall, imported = row["process_wall_ms_median"], row["import_ms_median"]
        print(f"  {row['what']:<{width}} {wall:>10.1f} {imported:>10.1f} {spread:>14}")
    print(f"\neach entry point's import beside import boto3's (target <= {TARGET_RATIO}x):")
    for entry_point, ratio in result["ratios_to_boto3"].items():
        verdict = "within" if ratio <= TARGET_RATIO else "OVER"
        print(f"  {entry_point:<52} {ratio:>5.2f}x  {verdict}")
    print("\nlazy SDK imports (in sys.modules after importing the entry point):")
    for entry_point, loaded in result["loaded_after"].items():
        for module in MUST_STAY_LAZY:
            verdict = "OK (not loaded)" if not loaded[module] else "FAILED (loaded)"
            print(f"  check: {module!r:<19} not in sys.modules after import {entry_point:<48} {verdict}")
        others = [m for m in REPORTED_MODULES if m not in MUST_STAY_LAZY]
        print("    also: " + ", ".join(f"{m} {'loaded' if loaded[m] else 'not loaded'}" for m in others))
    print(f"\nwhere import {ENTRY_POINTS[0]} spends its time (-X importtime, self time per package):")
    for row in result["importtime_submit"]:
        print(f"  {row['package']:<30} {row['self_ms']:>7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 runs per row instead of 7")
    parser.add_argument("--runs", type=int, help="runs per row (overrides --quick)")
    parser.add_argument(
        "--watchdog", type=float, default=600.0, help="dump the stacks and exit after this many seconds"
    )
    args = parser.parse_args()
    faulthandler.dump_traceback_later(args.watchdog, exit=True)
    runs = args.runs or (3 if args.quick else 7)
    rows = measure(runs)
    by_label = {row["what"]: row["import_ms_median"] for row in rows}
    result: dict[str, Any] = {
        "runs": runs,
        "rows": rows,
        "ratios_to_boto3": {
            entry_point: round(by_label[f"import {entry_point}"] / by_label["import boto3"], 2)
            for entry_point in ENTRY_POINTS
        },
        "target_ratio": TARGET_RATIO,
        "loaded_after": {entry_point: loaded_modules(entry_point) for entry_point in ENTRY_POINTS},
        "importtime_submit": import_time_by_package(ENTRY_POINTS[0], top=10),
    }
    checks = {
        f"{module} not loaded by {entry_point}": not loaded[module]
        for entry_point, loaded in result["loaded_after"].items()
        for module in MUST_STAY_LAZY
    }
    result["checks"] = checks
    publish("cold_import", result, quick=bool(args.quick), show=print_table)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

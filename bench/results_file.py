"""What every benchmark does with its figures: note the machine, print the table, keep the JSON."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def publish(
    name: str, result: dict[str, Any], *, quick: bool, show: Callable[[dict[str, Any]], None]
) -> Path:
    """Add the machine facts, print with ``show``, and write ``bench/results/<name>.json``."""
    result["machine"] = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }
    result["quick"] = quick
    show(result)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    out = RESULTS_DIR / f"{name}.json"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    shown = out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out
    print(f"\nwrote {shown}")
    return out

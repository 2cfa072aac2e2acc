"""bench/scale.py in its smallest mode: the real use cases over the counting fakes run to the end,
every upload ends DONE or FAILED with a reason, and the counts add up. The figures themselves are
the benchmark's (bench/results/scale.json), never asserted here."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import scale  # bench/ is not a package: its scripts are imported by path

pytestmark = pytest.mark.unit


def test_the_smallest_scale_run_ends_every_upload_and_its_counts_add_up() -> None:
    result = scale.run("smoke", ["sis", "dashscope"], processing_s=120.0, lost=0.05, jobs=1)
    broken = [name for name, holds in result["invariants"].items() if not holds]
    assert not broken, broken
    # Both designs of every scale ran, each over the same uploads.
    assert len(result["groups"]) == 4
    for group in result["groups"]:
        current, naive = group["current"], group["naive"]
        assert current["uploads"] == naive["uploads"] > 0
        for summary in (current, naive):
            assert sum(summary["states"].values()) == summary["uploads"]
            assert sum(summary["failures"].values()) == summary["states"].get("FAILED", 0)
            costs = summary["costs"]
            assert costs["aws"]["total_low"] <= costs["aws"]["total_high"]
            assert all(line["low"] is None or line["low"] >= 0 for line in costs["aws"]["lines"])


def test_a_scale_run_leaves_the_reconciler_and_the_logging_as_it_found_them() -> None:
    import logging

    import bucketscribe.pipeline.reconcile as reconcile_module

    rounds = reconcile_module.MAX_ROUNDS
    disabled = logging.root.manager.disable
    scale.simulate(scale.Scenario(name="t", provider="sis", design="naive", burst=20, quota=5))
    assert rounds == reconcile_module.MAX_ROUNDS
    assert logging.root.manager.disable == disabled

"""docs/deploy.md's cost tables are what infra/costs.py derives from infra/prices.toml, every price
there says where it comes from and when, and the table's assumptions match the deploy."""

from __future__ import annotations

import sys

import pytest

from tests.infra.deploy_sources import REPO, manifest, serverless

sys.path.insert(0, str(REPO / "infra"))
import costs  # infra/ is not a package: its modules are imported by path

pytestmark = pytest.mark.infra


def test_the_doc_shows_what_the_price_table_gives() -> None:
    doc = costs.DEPLOY_DOC.read_text(encoding="utf-8")
    tables = costs.render(costs.load())
    assert costs.with_tables(doc, tables) == doc, "run: .venv/bin/python infra/costs.py --write"


def test_every_price_has_a_source_and_a_date_or_says_where_to_find_it() -> None:
    prices = costs.load()
    for cloud in ("aws", "huawei", "speech"):
        for name, entry in prices[cloud].items():
            assert entry["currency"] in {"USD", "CNY"} and entry["unit"] and entry["region"], name
            if entry.get("status") == "unpriced":
                assert entry["lookup"].startswith("https://") and "price" not in entry, name
            else:
                assert entry["price"] > 0 and entry["per"] >= 1, name
                assert entry["source"].startswith("https://"), name
                assert len(entry["as_of"]) == 10 and entry["as_of"].startswith("20"), name


def test_data_transfer_out_is_counted_for_every_file() -> None:
    """Both providers fetch from outside AWS: 9.6-19.2 GB per 1 000 ten-minute files at $0.09."""
    lines = {line.item: line for line in costs.aws_lines(costs.load())}
    transfer = next(line for item, line in lines.items() if "data transfer out" in item)
    assert transfer.low == pytest.approx(0.864) and transfer.high == pytest.approx(1.728)
    others = sum(line.high or 0 for line in lines.values() if line is not transfer)
    assert (transfer.low or 0) > others, "the largest line of the table"


def test_the_workload_matches_the_deploy() -> None:
    workload = costs.load()["workload"]
    assert workload["ephemeral_storage_mb"] == serverless().params["ephemeralStorageMb"]
    assert workload["memory_mb"] == manifest()["functions"]["submit"]["memory_mb"]
    # Three indexes on the job table: each item write costs the table and each of them.
    assert workload["write_units_per_job_write_low"] == 1 + 3
    secrets = manifest()["secrets"].values()
    huawei_secrets = len(secrets)
    aws_secrets = sum("aws" in spec.get("clouds", ["aws", "huawei"]) for spec in secrets)
    assert (workload["huawei_secrets"], workload["aws_secrets"]) == (huawei_secrets, aws_secrets)

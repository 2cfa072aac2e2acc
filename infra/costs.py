"""Cost per 1 000 files, from infra/prices.toml: the tables of docs/deploy.md's "Cost per 1 000
files" section between its ``costs:begin`` and ``costs:end`` markers.

    python infra/costs.py            # print the tables
    python infra/costs.py --write    # put them into docs/deploy.md

tests/infra/test_costs.py fails when the doc holds anything else, so a price change goes through
prices.toml and this script. The call counts per file are assumptions stated in prices.toml's
[workload] until bench/scale.py counts them.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
PRICES = REPO / "infra" / "prices.toml"
DEPLOY_DOC = REPO / "docs" / "deploy.md"
BEGIN, END = "<!-- costs:begin (infra/costs.py --write) -->", "<!-- costs:end -->"


def load(path: Path = PRICES) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


@dataclass(frozen=True)
class Line:
    item: str
    quantity: str
    low: float | None  # None: not priced (see the table's lookup)
    high: float | None
    basis: str

    def cost(self, currency: str) -> str:
        if self.low is None or self.high is None:
            return "not priced"
        if abs(self.low - self.high) < 1e-12:
            return _money(self.low, currency)
        return f"{_money(self.low, currency)}–{_money(self.high, currency)}"


def _n(value: float) -> str:
    """A quantity: thousands split by spaces (1 000), up to three significant decimals."""
    if value >= 100:
        return f"{value:,.0f}".replace(",", " ")
    return f"{value:.3g}"


def _price(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _money(value: float, currency: str) -> str:
    symbol = "$" if currency == "USD" else "¥"
    if value == 0:
        return f"{symbol}0"
    digits = 2 if value >= 1 else 3 if value >= 0.1 else 4 if value >= 0.001 else 6
    return f"{symbol}{value:,.{digits}f}"


def _unit(prices: dict[str, Any], cloud: str, item: str) -> tuple[float | None, dict[str, Any]]:
    entry = prices[cloud][item]
    if entry.get("status") == "unpriced":
        return None, entry
    return entry["price"] / entry["per"], entry


def _basis(entry: dict[str, Any]) -> str:
    if entry.get("status") == "unpriced":
        return f"not found in a reachable source: {entry['lookup']}"
    per = "" if entry["per"] == 1 else f" per {_n(entry['per'])}"
    symbol = "$" if entry["currency"] == "USD" else "¥"
    return f"{symbol}{_price(entry['price'])}{per} {entry['unit']} ({entry['as_of']})"


def provider_download_gb(workload: dict[str, Any], kbps: float) -> float:
    seconds = workload["audio_minutes_per_file"] * 60
    return workload["files"] * kbps * 1000 / 8 * seconds / 1e9


def aws_lines(prices: dict[str, Any]) -> list[Line]:
    w = prices["workload"]
    files = w["files"]
    lines = []

    def line(item: str, key: str, quantity: float, label: str, high: float | None = None) -> None:
        unit, entry = _unit(prices, "aws", key)
        assert unit is not None, key
        top = quantity if high is None else high
        amount = _n(quantity) if high is None else f"{_n(quantity)}–{_n(top)}"
        lines.append(Line(item, f"{amount} {label}", quantity * unit, top * unit, _basis(entry)))

    requests = files * w["invocations_per_file"]
    line("function requests", "lambda_requests", requests, "invocations")
    gb_seconds = files * (w["submit_seconds"] + w["callback_seconds"]) * w["memory_mb"] / 1024
    line(
        "function time (measured; 10× in the cloud)",
        "lambda_compute_arm64",
        gb_seconds,
        "GB-s",
        gb_seconds * 10,
    )
    extra_gb = (w["ephemeral_storage_mb"] - 512) / 1024
    line(
        "submit's /tmp above 512 MB",
        "lambda_ephemeral_storage",
        files * w["submit_seconds"] * extra_gb,
        "GB-s",
    )
    line("upload queue", "sqs_requests", files * w["sqs_requests_per_file"], "requests")
    line("callback API", "api_gateway_rest_requests", files * w["api_requests_per_file"], "requests")
    writes = files * w["job_writes_per_file"]
    line(
        "job store writes (table + 3 indexes)",
        "dynamodb_write_units",
        writes * w["write_units_per_job_write_low"],
        "write units",
        writes * w["write_units_per_job_write_high"],
    )
    line("job store reads", "dynamodb_read_units", files * w["job_reads_per_file"], "read units")
    line("job events (EventBridge)", "eventbridge_custom_events", files * w["events_per_file"], "events")
    line("object PUTs", "s3_put_requests", files * w["object_puts_per_file"], "requests")
    line("object GETs/HEADs", "s3_get_requests", files * w["object_gets_per_file"], "requests")
    low_gb = provider_download_gb(w, w["provider_download_kbps_low"])
    high_gb = provider_download_gb(w, w["provider_download_kbps_high"])
    unit, entry = _unit(prices, "aws", "s3_transfer_out_internet")
    assert unit is not None
    lines.append(
        Line(
            "**data transfer out: SIS/DashScope download every file**",
            f"{_n(low_gb)}–{_n(high_gb)} GB",
            low_gb * unit,
            high_gb * unit,
            _basis(entry),
        )
    )
    transcripts_gb = files * w["transcript_bytes_per_file"] / 1e9
    line("transcripts kept, per month", "s3_storage", transcripts_gb, "GB")
    return lines


def huawei_lines(prices: dict[str, Any]) -> list[Line]:
    w = prices["workload"]
    files = w["files"]
    lines = []
    for item, key, quantity, label in (
        ("function requests", "functiongraph_requests", files * w["invocations_per_file"], "invocations"),
        (
            "function time (measured)",
            "functiongraph_compute",
            files * (w["submit_seconds"] + w["callback_seconds"]) * w["memory_mb"] / 1024,
            "GB-s",
        ),
        ("job events (SMN)", "smn_messages", files * w["events_per_file"], "messages"),
        (
            "object requests",
            "obs_requests",
            files * (w["object_puts_per_file"] + w["object_gets_per_file"]),
            "requests",
        ),
    ):
        unit, entry = _unit(prices, "huawei", key)
        cost = None if unit is None else quantity * unit
        lines.append(Line(item, f"{_n(quantity)} {label}", cost, cost, _basis(entry)))
    low_gb = provider_download_gb(w, w["provider_download_kbps_low"])
    high_gb = provider_download_gb(w, w["provider_download_kbps_high"])
    unit, entry = _unit(prices, "huawei", "obs_transfer_out_internet")
    lines.append(
        Line(
            "OBS traffic out: DashScope downloads every file (SIS: same region, billing undocumented)",
            f"{_n(low_gb)}–{_n(high_gb)} GB",
            None if unit is None else low_gb * unit,
            None if unit is None else high_gb * unit,
            _basis(entry),
        )
    )
    return lines


def fixed_monthly(prices: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(cloud, item, monthly cost, basis) of what costs the same however many files there are."""
    w = prices["workload"]
    rows = []
    unit, entry = _unit(prices, "aws", "secrets_manager_secret")
    assert unit is not None
    rows.append(
        (
            "AWS",
            f"Secrets Manager, {w['aws_secrets']} secrets",
            _money(w["aws_secrets"] * unit, "USD"),
            _basis(entry),
        )
    )
    for key, label in (
        ("geminidb_dynamodb_instance", "GeminiDB DynamoDB-compatible instance (job store)"),
        ("apig_dedicated_instance", "dedicated API Gateway instance (callback API)"),
        ("nat_gateway", "NAT gateway (the functions' way out of the VPC)"),
        ("eip_bandwidth", "EIPs of the NAT gateway and the API Gateway"),
        ("csms_secret", f"CSMS, {w['huawei_secrets']} secrets"),
        ("kms_key", "KMS key of the secrets"),
    ):
        unit, entry = _unit(prices, "huawei", key)
        rows.append(
            ("Huawei Cloud", label, "not priced" if unit is None else _money(unit, "CNY"), _basis(entry))
        )
    return rows


def speech_lines(prices: dict[str, Any]) -> list[tuple[str, str, str]]:
    w = prices["workload"]
    hours = w["files"] * w["audio_minutes_per_file"] / 60
    sis, sis_entry = _unit(prices, "speech", "sis_recording_file")
    dashscope, dashscope_entry = _unit(prices, "speech", "dashscope_paraformer")
    assert sis is not None and dashscope is not None
    return [
        ("Huawei SIS, recording-file recognition", _money(hours * sis, "CNY"), _basis(sis_entry)),
        (
            "DashScope Paraformer (only speech is billed: at most)",
            _money(hours * 3600 * dashscope, "CNY"),
            _basis(dashscope_entry),
        ),
    ]


def render(prices: dict[str, Any]) -> str:
    w = prices["workload"]
    aws = aws_lines(prices)
    low = sum(line.low or 0 for line in aws)
    high = sum(line.high or 0 for line in aws)
    out = [
        BEGIN,
        "",
        f"Per {_n(w['files'])} files of {w['audio_minutes_per_file']} minutes, the provider downloading "
        f"{w['provider_download_kbps_low']}–{w['provider_download_kbps_high']} kb/s of audio per file. "
        "Generated by `infra/costs.py` from `infra/prices.toml` (prices with their sources and the date "
        "each was recorded; call counts per file are its `[workload]` assumptions).",
        "",
        "**AWS** (us-east-1, USD), before free tiers:",
        "",
        "| item | quantity | cost | price (recorded) |",
        "|---|---|---|---|",
    ]
    out += [f"| {line.item} | {line.quantity} | {line.cost('USD')} | {line.basis} |" for line in aws]
    out += [
        f"| **pipeline, per {_n(w['files'])} files** | | **{_money(low, 'USD')}–{_money(high, 'USD')}** | |",
        "",
        "**Huawei Cloud** (cn-north-4, CNY):",
        "",
        "| item | quantity | cost | price (recorded) |",
        "|---|---|---|---|",
    ]
    out += [
        f"| {line.item} | {line.quantity} | {line.cost('CNY')} | {line.basis} |"
        for line in huawei_lines(prices)
    ]
    out += [
        "",
        "**Fixed, per month**, however many files:",
        "",
        "| cloud | item | per month | price |",
        "|---|---|---|---|",
    ]
    out += [f"| {cloud} | {item} | {cost} | {basis} |" for cloud, item, cost, basis in fixed_monthly(prices)]
    hours = w["files"] * w["audio_minutes_per_file"] / 60
    out += [
        "",
        f"**Speech**, {_n(w['files'])} × {w['audio_minutes_per_file']} min = {hours:.0f} audio hours:",
        "",
        "| provider | cost | price |",
        "|---|---|---|",
    ]
    out += [f"| {provider} | {cost} | {basis} |" for provider, cost, basis in speech_lines(prices)]
    out += ["", END]
    return "\n".join(out)


def with_tables(doc: str, tables: str) -> str:
    start, end = doc.index(BEGIN), doc.index(END) + len(END)
    return doc[:start] + tables + doc[end:]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--write", action="store_true", help=f"replace the tables in {DEPLOY_DOC.name}")
    options = parser.parse_args()
    tables = render(load())
    if options.write:
        DEPLOY_DOC.write_text(with_tables(DEPLOY_DOC.read_text(encoding="utf-8"), tables), encoding="utf-8")
    else:
        sys.stdout.write(tables + "\n")


if __name__ == "__main__":
    main()

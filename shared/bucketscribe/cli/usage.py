"""``bucketscribe usage``: what the pipeline did and what it cost, computed from the job records.

Per upload (a *file*; the parts of a split upload are not files of their own): its state, and its
audio length as probed. Per job (parts included): its *provider jobs*, the attempts that created a
task at the provider (what is paid for); *duplicates paid* are those beyond a job's first (a lost
answer resolved too late, an expired result, a re-drive: each is billed again); attempts whose
outcome was never learnt (the provider may or may not hold a task) are counted apart.

The estimated cost is each provider job's audio length times its provider's price
(``speech_prices.toml``, a copy of infra/prices.toml's speech tables). It is an estimate, not a
bill: a provider may bill less (DashScope bills only the speech), round per job, or give
discounts; a provider without a price in the table is reported as minutes not priced.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Iterable
from datetime import datetime
from importlib.resources import files

from pydantic import BaseModel

from bucketscribe.domain.job import Attempt, AttemptState, Job, JobState

PRICE_FILE = "speech_prices.toml"
# Which [speech.*] table prices which provider (as jobs name providers: ``providers/registry.py``).
PRICED_BY = {"sis": "sis_recording_file", "dashscope": "dashscope_paraformer"}
# Seconds of audio in each billing unit the price table uses.
UNIT_SECONDS = {"audio hour": 3600.0, "audio minute": 60.0, "second of speech": 1.0, "audio second": 1.0}
GROUPINGS = ("profile", "provider", "day")


class SpeechPrice(BaseModel):
    provider: str
    per_minute: float
    currency: str
    unit: str
    price: float
    as_of: str
    source: str


def speech_prices() -> dict[str, SpeechPrice]:
    """The priced providers, by name, from the price table shipped with the package."""
    table = tomllib.loads(files("bucketscribe.cli").joinpath(PRICE_FILE).read_text(encoding="utf-8"))
    prices = {}
    for provider, entry_name in PRICED_BY.items():
        entry = table["speech"][entry_name]
        prices[provider] = SpeechPrice(
            provider=provider,
            per_minute=entry["price"] / entry["per"] * 60 / UNIT_SECONDS[entry["unit"]],
            currency=entry["currency"],
            unit=entry["unit"],
            price=entry["price"],
            as_of=entry["as_of"],
            source=entry["source"],
        )
    return prices


class UsageFigures(BaseModel):
    files: int = 0
    done: int = 0
    failed: int = 0
    superseded: int = 0
    unfinished: int = 0
    failed_by_code: dict[str, int] = {}
    audio_minutes: float = 0.0
    """The uploads' audio, where its length is known."""
    files_of_unknown_length: int = 0
    provider_jobs: int = 0
    duplicates_paid: int = 0
    attempts_outcome_unknown: int = 0
    billed_minutes: float = 0.0
    """Every provider job's audio: what the providers bill (by length) for."""
    provider_jobs_of_unknown_length: int = 0
    cost: dict[str, float] = {}
    """Estimated, by currency."""
    unpriced_minutes: dict[str, float] = {}
    """Billed minutes of providers the price table has no price for, by provider."""

    def add(self, job: Job, prices: dict[str, SpeechPrice]) -> None:
        if job.part_of is None:
            self._add_file(job)
        tasks = sum(1 for attempt in job.attempts if attempt.task_id)
        self.provider_jobs += tasks
        self.duplicates_paid += max(0, tasks - 1)
        self.attempts_outcome_unknown += sum(1 for attempt in job.attempts if _may_have_made_a_task(attempt))
        if not tasks:
            return
        if job.audio_ms is None:
            self.provider_jobs_of_unknown_length += tasks
            return
        minutes = job.audio_ms / 60_000 * tasks
        self.billed_minutes += minutes
        price = prices.get(job.provider)
        if price is None:
            self.unpriced_minutes[job.provider] = self.unpriced_minutes.get(job.provider, 0.0) + minutes
        else:
            self.cost[price.currency] = self.cost.get(price.currency, 0.0) + minutes * price.per_minute

    def _add_file(self, job: Job) -> None:
        self.files += 1
        if job.state is JobState.DONE:
            self.done += 1
        elif job.state is JobState.FAILED:
            self.failed += 1
            code = job.error.code if job.error else "UNKNOWN"
            self.failed_by_code[code] = self.failed_by_code.get(code, 0) + 1
        elif job.state is JobState.SUPERSEDED:
            self.superseded += 1
        else:
            self.unfinished += 1
        if job.audio_ms is None:
            self.files_of_unknown_length += 1
        else:
            self.audio_minutes += job.audio_ms / 60_000


def _may_have_made_a_task(attempt: Attempt) -> bool:
    """An attempt without a known task that the provider may still have made one for."""
    if attempt.task_id:
        return False
    if attempt.state is AttemptState.ABANDONED:
        return not attempt.listed_none  # the provider's own listing showed none: certainly nothing
    return attempt.state in (AttemptState.IN_FLIGHT, AttemptState.UNCERTAIN)


class UsageReport(BaseModel):
    since: datetime | None
    by: str | None
    jobs_read: int
    groups: dict[str, UsageFigures]
    total: UsageFigures
    prices: list[SpeechPrice]


def group_key(by: str | None) -> Callable[[Job], str]:
    if by == "profile":
        return lambda job: job.profile
    if by == "provider":
        return lambda job: job.provider
    if by == "day":
        return lambda job: job.created_at.date().isoformat()  # job times are UTC
    return lambda job: "all"


def usage_report(
    jobs: Iterable[Job], *, since: datetime | None, by: str | None, prices: dict[str, SpeechPrice]
) -> UsageReport:
    """Figures over ``jobs`` created at or after ``since``, per group (``--by``) and in total."""
    key = group_key(by)
    groups: dict[str, UsageFigures] = {}
    total = UsageFigures()
    read = 0
    for job in jobs:
        read += 1
        if since is not None and job.created_at < since:
            continue  # changed since, created before: the store's listing filters by change
        groups.setdefault(key(job), UsageFigures()).add(job, prices)
        total.add(job, prices)
    return UsageReport(
        since=since,
        by=by,
        jobs_read=read,
        groups=dict(sorted(groups.items())) if by else {},
        total=total,
        prices=list(prices.values()),
    )


# ----- text --------------------------------------------------------------------------------------


def money(amounts: dict[str, float]) -> str:
    if not amounts:
        return "0"
    symbols = {"CNY": "¥", "USD": "$"}
    return " + ".join(f"{symbols.get(c, c + ' ')}{amount:,.4f}" for c, amount in sorted(amounts.items()))


def _files_text(figures: UsageFigures) -> str:
    return (
        f"{figures.files} ({figures.done} done, {figures.failed} failed, "
        f"{figures.superseded} superseded, {figures.unfinished} unfinished)"
    )


def render_text(report: UsageReport, where: str) -> str:
    total = report.total
    since = f" since {report.since:%Y-%m-%d %H:%M} UTC" if report.since else ""
    lines = [f"Usage{since}, from {where} ({_count(report.jobs_read, 'job record')} read):", ""]
    if report.by:
        lines += _table(report)
        lines.append("")
    unknown = f" ({total.files_of_unknown_length} of unknown length)" if total.files_of_unknown_length else ""
    outcome = (
        f"; {_count(total.attempts_outcome_unknown, 'attempt')} whose outcome was never learnt"
        if total.attempts_outcome_unknown
        else ""
    )
    duplicates = _count(total.duplicates_paid, "duplicate")
    lines += [
        f"  files          {_files_text(total)}",
        f"  audio          {total.audio_minutes:.2f} min{unknown}",
        f"  provider jobs  {total.provider_jobs} ({duplicates} paid{outcome})",
        f"  billed audio   {total.billed_minutes:.2f} min",
        f"  est. cost      {money(total.cost)}",
    ]
    if total.failed_by_code:
        codes = ", ".join(f"{code} ×{n}" for code, n in sorted(total.failed_by_code.items()))
        lines.append(f"  failures       {codes}")
    lines += ["", _price_note(report)]
    return "\n".join(lines) + "\n"


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}" if n == 1 else f"{n} {thing}s"


def _decimal(value: float) -> str:
    """A price as written in the table (0.00008, not 8e-05)."""
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _table(report: UsageReport) -> list[str]:
    heading = (report.by or "").upper()
    rows = [*report.groups.items(), ("TOTAL", report.total)]
    width = max(len(heading), *(len(name) for name, _ in rows))
    header = (
        f"  {heading:<{width}}  {'FILES':>5}  {'DONE':>5}  {'FAILED':>6}  {'AUDIO MIN':>9}  "
        f"{'PROVIDER JOBS':>13}  {'DUPLICATES':>10}  EST. COST"
    )
    lines = [header]
    for name, f in rows:
        lines.append(
            f"  {name:<{width}}  {f.files:>5}  {f.done:>5}  {f.failed:>6}  {f.audio_minutes:>9.2f}  "
            f"{f.provider_jobs:>13}  {f.duplicates_paid:>10}  {money(f.cost)}"
        )
    return lines


def _price_note(report: UsageReport) -> str:
    priced = "; ".join(
        f"{p.provider} {_decimal(p.price)} {p.currency} per {p.unit} ({p.as_of})" for p in report.prices
    )
    note = (
        f"Estimated cost: each provider job billed for its audio's whole length at {priced}. "
        "Not a bill: DashScope bills only the speech (so this is at most), and regions, tiers and "
        "discounts differ."
    )
    unpriced = report.total.unpriced_minutes
    if unpriced:
        minutes = ", ".join(f"{name} ({m:.2f} min)" for name, m in sorted(unpriced.items()))
        note += f" Not priced: {minutes}."
    if report.total.provider_jobs_of_unknown_length:
        unknown = report.total.provider_jobs_of_unknown_length
        note += f" {unknown} provider jobs of unknown length are not costed."
    return note

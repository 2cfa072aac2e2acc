"""Scale: the real use cases over counting fakes with a simulated clock, at 10k, 100k and 1M
uploads a day and a 10k-file burst, beside the naive design; and the cost per 1 000 files that
follows from the counted calls and infra/prices.toml.

What runs is the pipeline itself: ``submit_uploads`` for each batch the upload queue hands the
submit function, ``complete_callback`` (SIS: one signed callback per job) or ``complete_task``
(DashScope: one push per task of up to 100 files) when the provider's task ends, and
``reconcile`` every 5 minutes. The ports are the unit tests' in-memory fakes (tests/fakes.py),
wrapped to count every call by kind:

- job store: reads (get, task records), writes (creates, conditional saves, task records),
  queries (the due index), leases; with the DynamoDB request units each call would consume,
  from the item the DynamoDB adapter writes (``DynamoJobStore._item``: the whole job as JSON plus
  its index keys). A write is billed on the table and on each of its three indexes that holds
  the item; an index whose key changes costs a delete and a put there.
- storage: HEADs, ranged and whole GETs, PUTs, DELETEs, presigned URLs;
- provider: submissions (taken, and turned away for the quota), task queries, listings, result
  downloads. The provider finishes each task after a processing time, loses a share of its
  callbacks/pushes, and turns submissions away above a concurrency quota (tasks in flight).

Time is simulated (nothing sleeps). Each invocation runs at one instant; how long it would take
is the sum of its calls at stated per-call latencies (``LATENCIES``) plus the CPU it used here,
plus a stated rendering time per transcript. That duration holds one of the submit function's
concurrency slots, is what the reconciler's ``out_of_time`` sees (270 s: the 300 s timeout less
its 30 s margin), and is billed as GB-seconds.

The naive design is the same code with the reconciler as it was before rounds (for its runs
``MAX_ROUNDS`` is set to 1, and ``Limits.side_by_side`` is 1: at most 500 due jobs per run, their
tasks asked, and an invocation's uploads submitted, one after the other) and a quota refusal
answered as an ordinary refusal (a ``ProviderError`` without ``over_capacity``): retried with
backoff, the upload failing NEVER_SUBMITTED at the 8th.

Run: ``.venv/bin/python bench/scale.py`` (a few minutes on 2 cores), ``--quick`` (about a
minute; what ``make bench`` runs), ``--full`` (longer windows of each day; 15-25 minutes),
``--smoke`` (seconds: the invariants only, as tests/unit/test_scale_simulation.py runs it).
Writes bench/results/scale.json (not with ``--smoke``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import heapq
import logging
import math
import os
import random
import struct
import sys
import time
import tomllib
from bisect import bisect_left, insort
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar, cast

os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bucketscribe")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # tests.fakes: the in-memory ports the simulation counts

from bucketscribe_local.stack import (  # noqa: E402
    DEPLOYED_SUBMIT_BATCH_SIZE,
    DEPLOYED_SUBMIT_BATCHING_WINDOW_S,
    DEPLOYED_SUBMIT_MAX_CONCURRENCY,
)

import bucketscribe.pipeline.reconcile as reconcile_module  # noqa: E402
import bucketscribe.pipeline.steps.side_by_side as side_by_side_module  # noqa: E402
from bucketscribe.clouds.aws.job_store import DynamoJobStore  # noqa: E402
from bucketscribe.domain.callback_tokens import CallbackSigner  # noqa: E402
from bucketscribe.domain.job import Job, JobState  # noqa: E402
from bucketscribe.domain.media_routing import MediaRequirements  # noqa: E402
from bucketscribe.domain.output_layout import OutputLayout  # noqa: E402
from bucketscribe.domain.profile import Profile, ProfileSet  # noqa: E402
from bucketscribe.domain.transcript import Segment, Transcript  # noqa: E402
from bucketscribe.domain.upload import ObjectRef  # noqa: E402
from bucketscribe.pipeline.complete import (  # noqa: E402
    UnknownTask,
    complete_callback,
    complete_task,
)
from bucketscribe.pipeline.context import Limits  # noqa: E402
from bucketscribe.pipeline.reconcile import reconcile  # noqa: E402
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads  # noqa: E402
from bucketscribe.ports.provider import (  # noqa: E402
    FileOutcome,
    ProviderError,
    SearchesTasks,
    SubmitItem,
    SubmitReceipt,
    TaskResult,
    TaskSearch,
    TaskStatus,
)
from bucketscribe.ports.storage import ObjectInfo  # noqa: E402
from tests.fakes import (  # noqa: E402
    FakePorts,
    FakeProvider,
    InMemoryJobStore,
    InMemoryStorage,
    SettableClock,
    claim_from_callback_url,
)
from tests.profiles import profile  # noqa: E402

try:  # bench/ is on sys.path when run as a script; a test imports this module by path
    from results_file import publish
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from results_file import publish

T = TypeVar("T")
PRICES = REPO / "infra" / "prices.toml"
T0 = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
BUCKET = "recordings"

# -- what one file is (as infra/prices.toml's [workload]) -----------------------------------------

AUDIO_S = 600  # ten-minute files
WAV_BYTES = AUDIO_S * 16_000 * 2  # 16 kHz 16-bit mono PCM: what SIS's 16k property takes as it is
# The upload the simulation stores is this WAV's 44-byte header (all the pipeline reads of it);
# the event and HEAD report the whole size.

# -- the deploy as serverless.yml has it ---------------------------------------------------------

RECONCILE_EVERY_S = 300
RECONCILE_BUDGET_S = 300 - 30  # timeout less RECONCILE_MARGIN_MS
SUBMIT_BUDGET_S = 300 - 60  # timeout less SUBMIT_MARGIN_MS
PUSH_BUDGET_S = 28 - 15  # callback timeout less PUSH_MARGIN_MS
QUEUE_VISIBILITY_S = 1800  # infra/resources/queues.yml: 6x the submit function's timeout
MEMORY_GB = 1.0  # 1 024 MB, every function
EPHEMERAL_EXTRA_GB = (5120 - 512) / 1024  # submit's and reconcile's /tmp above the free 512 MB
RUNS_PER_DAY = 86_400 // RECONCILE_EVERY_S
# Rendering json/txt/srt/vtt of a 10-minute transcript: bench/render.py measured 0.15 s per hour
# of audio (2-core reference machine, 2026-11-29). The simulated transcripts are one segment long,
# so this is added per transcript written rather than measured here.
RENDER_S = 0.15 * AUDIO_S / 3600
# S3 -> SQS: one SendMessage per upload; the poller's ReceiveMessage and DeleteMessageBatch take
# at most 10 messages each. Lambda's pollers also long-poll an empty queue: about 5 pollers x 3
# requests a minute (20 s long polls), a fixed cost per day whatever the load.
SQS_MESSAGES_PER_CALL = 10
SQS_IDLE_REQUESTS_PER_DAY = 5 * 3 * 60 * 24


@dataclass(frozen=True)
class Latencies:
    """Seconds one call takes, as a function sees it (a kept-alive HTTPS connection: one round
    trip plus the service's own time). Stated, not measured: no cloud is reachable from here."""

    cloud: str
    store_read: float
    store_write: float
    store_query: float
    store_query_per_item: float
    head: float
    range_get: float
    put: float
    delete: float
    provider_rtt: float
    # The provider's own time per call (SIS and DashScope alike; an assumption).
    submit_service: float = 0.150
    fetch_service: float = 0.080
    listing_service: float = 0.150
    result_service: float = 0.050

    def of(self, kind: str) -> float:
        return self.table.get(kind, 0.0)

    @cached_property
    def table(self) -> dict[str, float]:
        return {
            "store.get": self.store_read,
            "store.task_files": self.store_read,
            "store.bind_task": self.store_read,
            "store.bind_task_write": self.store_write,
            "store.create": self.store_write,
            "store.save": self.store_write,
            "store.take_lease": self.store_write,
            "store.end_lease": self.store_write,
            "store.due": self.store_query,
            "store.due_items": self.store_query_per_item,
            "store.for_source": self.store_query,
            "store.deliveries_due": self.store_query,
            "store.listing": self.store_query,
            "storage.head": self.head,
            "storage.range_get": self.range_get,
            "storage.get": self.range_get,
            "storage.put": self.put,
            "storage.delete": self.delete,
            "provider.submit": self.provider_rtt + self.submit_service,
            "provider.refused": self.provider_rtt + self.submit_service,
            "provider.fetch": self.provider_rtt + self.fetch_service,
            "provider.listing": self.provider_rtt + self.listing_service,
            "provider.result_download": self.provider_rtt + self.result_service,
            "render": RENDER_S,
        }


# DynamoDB's "single-digit millisecond" reads and writes, from a function in the table's region;
# S3 small-object requests in the tens of ms; SIS (cn-north-4) and DashScope (cn-beijing) across
# the Pacific from us-east-1: ~200 ms a round trip. On Huawei Cloud the functions, GeminiDB and
# OBS sit in cn-north-4 beside SIS; DashScope is in the same city (10 ms).
_AWS_LATENCIES = Latencies(
    cloud="aws",
    store_read=0.005,
    store_write=0.008,
    store_query=0.010,
    store_query_per_item=0.00004,
    head=0.015,
    range_get=0.025,
    put=0.030,
    delete=0.015,
    provider_rtt=0.200,
)
# The same stores' latencies on Huawei Cloud; only the way to the providers differs.
LATENCIES = {
    "aws": _AWS_LATENCIES,
    "huawei": replace(_AWS_LATENCIES, cloud="huawei", provider_rtt=0.010),
}
# DashScope allows 20 task queries (and 20 submissions) a second per account; its adapter spaces
# them at 90 % of that, so a run's queries take at least n / 18 s however many are in flight.
# (Result files are downloaded from their own URLs, outside that limit.)
DASHSCOPE_RATE_PER_S = 18.0
RATE_LIMITED = ("provider.submit", "provider.refused", "provider.fetch", "provider.listing")


# -- counting ------------------------------------------------------------------------------------


@dataclass
class Section:
    """Work the pipeline hands a thread pool (``ThreadPoolExecutor.map``): each task's calls, run
    on ``workers`` threads. Its time is the tasks laid on the workers, longest first."""

    workers: int
    tasks: list[Counter[str]] = field(default_factory=list)
    spans: dict[str, float] = field(default_factory=dict)  # per cloud, once the section has ended

    def span(self, latencies: Latencies, rate_per_s: float | None) -> float:
        if latencies.cloud in self.spans:
            return self.spans[latencies.cloud]
        times = sorted(
            (sum(latencies.of(k) * n for k, n in task.items()) for task in self.tasks), reverse=True
        )
        loads = [0.0] * max(1, min(self.workers, len(times)))
        for took in times:
            heapq.heapreplace(loads, loads[0] + took)
        span = max(loads)
        if rate_per_s:
            span = max(span, sum(task[kind] for task in self.tasks for kind in RATE_LIMITED) / rate_per_s)
        return span

    def running_span(self, latencies: Latencies) -> float:
        """While it runs: what its finished tasks add up to, spread evenly (cheap to ask often)."""
        done = sum(latencies.of(k) * n for task in self.tasks for k, n in task.items())
        return done / max(1, self.workers)


class Invocation:
    """One function invocation's calls: those of its own thread add up; those it hands a thread
    pool take the pool's time (``Section``). ``elapsed`` is how long it would take."""

    def __init__(self, function: str, start_s: float, rate_per_s: float | None) -> None:
        self.function = function
        self.start_s = start_s
        self.rate_per_s = rate_per_s
        self.main: Counter[str] = Counter()
        self.sections: list[Section] = []
        self.task: Counter[str] | None = None  # the pool task running now
        self.open: Section | None = None
        self.units: Counter[str] = Counter()
        self.cpu_start = time.process_time()
        self.cpu_s: float | None = None
        self.due_seen: set[str] = set()
        self.rounds = 0
        self.ran_out = False  # its out_of_time said so at least once

    def out_of_time(self, budget_s: float) -> bool:
        if self.elapsed(LATENCIES["aws"]) > budget_s:
            self.ran_out = True
        return self.ran_out

    def add(self, kind: str, n: int = 1) -> None:
        (self.task if self.task is not None else self.main)[kind] += n

    def cpu(self) -> float:
        return self.cpu_s if self.cpu_s is not None else time.process_time() - self.cpu_start

    def io_s(self, latencies: Latencies) -> float:
        total = sum(latencies.of(kind) * n for kind, n in self.main.items())
        total += sum(section.span(latencies, self.rate_per_s) for section in self.sections)
        if self.open is not None:
            total += self.open.running_span(latencies)
        return total

    def elapsed(self, latencies: Latencies) -> float:
        return self.io_s(latencies) + self.cpu()

    def counts(self) -> Counter[str]:
        counts = Counter(self.main)
        for section in self.sections:
            for task in section.tasks:
                counts.update(task)
        return counts


class Meter:
    """Every counted call, in total and by invocation."""

    def __init__(self) -> None:
        self.totals: Counter[str] = Counter()
        self.units: Counter[str] = Counter()
        self.current: Invocation | None = None

    def count(self, kind: str, n: int = 1) -> None:
        self.totals[kind] += n
        if self.current is not None:
            self.current.add(kind, n)

    def unit(self, kind: str, amount: float) -> None:
        self.units[kind] += amount  # type: ignore[assignment]  # Counter of floats
        if self.current is not None:
            self.current.units[kind] += amount  # type: ignore[assignment]

    @contextlib.contextmanager
    def invocation(
        self, function: str, start_s: float, *, rate_per_s: float | None = None
    ) -> Iterator[Invocation]:
        assert self.current is None, "invocations run one at a time in the simulation"
        self.current = Invocation(function, start_s, rate_per_s)
        try:
            yield self.current
        finally:
            self.current.cpu_s = time.process_time() - self.current.cpu_start
            self.current = None


class SimulatedPool:
    """``ThreadPoolExecutor`` as the pipeline uses it (``with ... as pool: pool.map(fn, items)``),
    put in its place while a scenario runs: the tasks run one after another on this thread (the
    simulation stays deterministic), each task's calls kept apart, so that the invocation's time
    counts the pool's tasks laid on its ``max_workers`` threads."""

    meter: Meter | None = None  # the scenario's, set while it runs

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "") -> None:
        self.workers = max_workers or 1

    def __enter__(self) -> SimulatedPool:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def map(self, fn: Callable[..., T], *iterables: Iterable[Any]) -> Iterator[T]:
        invocation = self.meter.current if self.meter is not None else None
        if invocation is None or invocation.open is not None:
            outcomes = [_outcome(fn, args) for args in zip(*iterables, strict=False)]
        else:
            section = invocation.open = Section(self.workers)
            try:
                outcomes = []
                for args in zip(*iterables, strict=False):
                    invocation.task = Counter()
                    try:
                        outcomes.append(_outcome(fn, args))
                    finally:
                        section.tasks.append(invocation.task)
                        invocation.task = None
            finally:
                invocation.open = None
                invocation.sections.append(section)
                section.spans = {
                    cloud: section.span(latencies, invocation.rate_per_s)
                    for cloud, latencies in LATENCIES.items()
                }
        return _results(outcomes)


def _outcome(fn: Callable[..., T], args: tuple[Any, ...]) -> tuple[T | None, BaseException | None]:
    try:
        return fn(*args), None
    except Exception as exc:  # raised when its result is reached, as the executor's map does
        return None, exc


def _results(outcomes: list[tuple[T | None, BaseException | None]]) -> Iterator[T]:
    for value, error in outcomes:
        if error is not None:
            raise error
        yield cast(T, value)


@contextlib.contextmanager
def simulated_pools(meter: Meter) -> Iterator[None]:
    """The pipeline's thread pools replaced by ``SimulatedPool`` (and given back afterwards)."""
    modules = (side_by_side_module,)
    saved = [module.ThreadPoolExecutor for module in modules]
    SimulatedPool.meter = meter
    for module in modules:
        vars(module)["ThreadPoolExecutor"] = SimulatedPool
    try:
        yield
    finally:
        for module, original in zip(modules, saved, strict=True):
            vars(module)["ThreadPoolExecutor"] = original
        SimulatedPool.meter = None


def _ceil_units(size: float, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _attribute_bytes(value: dict[str, Any]) -> int:
    """DynamoDB's size of one attribute value: UTF-8 bytes of a string, about half the digits of a
    number, the sum of a map's names and values plus 3 bytes."""
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(inner.encode("utf-8"))
    if kind == "N":
        return len(inner.lstrip("-").replace(".", "")) // 2 + 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + _attribute_bytes(v) for k, v in inner.items())
    return len(str(inner))


def item_bytes(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + _attribute_bytes(value) for name, value in item.items())


@dataclass(frozen=True)
class Stored:
    """What the job's DynamoDB item is now: its size and its three index keys (None: not in it)."""

    size: int
    open_key: tuple[str, str] | None
    source_key: tuple[str, str]
    state_key: tuple[str, str]


class CountingJobStore(InMemoryJobStore):
    """The job-store fake, counted, with the DynamoDB units of each call; its due jobs are kept in
    a sorted index (the fake scans every job, too slow for a day of uploads)."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter
        self.open: dict[str, Job] = {}
        self._due_index: list[tuple[datetime, str]] = []
        self._due_key: dict[str, tuple[datetime, str]] = {}
        self._delivering: dict[str, Job] = {}  # finished jobs with an event delivery still due
        self._stored: dict[str, Stored] = {}
        self._task_bytes: dict[tuple[str, str], int] = {}
        self._layout = DynamoJobStore("jobs", client=cast(Any, object()))

    # DynamoDB units -----------------------------------------------------------------------------

    def _describe(self, job: Job) -> Stored:
        item = self._layout._item(job)
        open_key = (item["open_state"]["S"], item["next_check_at"]["S"]) if "open_state" in item else None
        return Stored(
            size=item_bytes(item),
            open_key=open_key,
            source_key=(item["source_key"]["S"], item["created_at"]["S"]),
            state_key=(item["state"]["S"], item["updated_at"]["S"]),
        )

    def _bill_write(self, old: Stored | None, new: Stored) -> None:
        """One item write: the table (the larger of the old and new item) and each index that
        holds the item before or after (a key that changes: a delete and a put there)."""
        new_units = _ceil_units(new.size, 1024)
        old_units = _ceil_units(old.size, 1024) if old else 0
        total = max(new_units, old_units)
        pairs = (
            (old.open_key if old else None, new.open_key),
            (old.source_key if old else None, new.source_key),
            (old.state_key if old else None, new.state_key),
        )
        for index, (before, after) in enumerate(pairs):
            if before is None and after is None:
                cost = 0
            elif before is None:
                cost = new_units
            elif after is None:
                cost = old_units
            else:
                cost = new_units + (old_units if before != after else 0)
            total += cost
            if index == 0:
                self.meter.unit("ddb.wru_open_index", cost)
        self.meter.unit("ddb.wru", total)

    def _index_due(self, job: Job) -> None:
        if job.state.is_final and job.next_delivery_at is not None:
            self._delivering[job.id] = job
        else:
            self._delivering.pop(job.id, None)
        old = self._due_key.pop(job.id, None)
        if old is not None:
            del self._due_index[bisect_left(self._due_index, old)]
        if job.state.is_final:
            self.open.pop(job.id, None)
            return
        self.open[job.id] = job
        if job.next_check_at is not None:
            key = (job.next_check_at, job.id)
            insort(self._due_index, key)
            self._due_key[job.id] = key

    def _written(self, job: Job) -> None:
        old = self._stored.get(job.id)
        new = self._describe(job)
        self._bill_write(old, new)
        self._stored[job.id] = new
        self._index_due(job)
        if job.state is JobState.DONE:
            self.meter.count("render")

    # the port ------------------------------------------------------------------------------------

    def take_lease(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        self.meter.count("store.take_lease")
        self.meter.unit("ddb.wru", 1)
        return super().take_lease(name, owner=owner, until=until, now=now)

    def end_lease(self, name: str, *, owner: str) -> None:
        self.meter.count("store.end_lease")
        self.meter.unit("ddb.wru", 1)
        super().end_lease(name, owner=owner)

    def create(self, job: Job) -> bool:
        self.meter.count("store.create")
        created = super().create(job)
        if created:
            self._written(job)
        else:
            self.meter.count("store.conflict")
            self.meter.unit("ddb.wru", _ceil_units(self._describe(job).size, 1024))
        return created

    def get(self, job_id: str | None) -> Job | None:
        self.meter.count("store.get")
        stored = self._stored.get(job_id or "")
        self.meter.unit("ddb.rru", _ceil_units(stored.size if stored else 0, 4096))
        return super().get(job_id)

    def save(self, job: Job) -> bool:
        self.meter.count("store.save")
        saved = super().save(job)
        if saved:
            self._written(job)
        else:
            self.meter.count("store.conflict")
            self.meter.unit("ddb.wru", _ceil_units(self._describe(job).size, 1024))
        return saved

    def bind_task(
        self, provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        # The DynamoDB adapter reads the task's record and writes it over the revision it read.
        self.meter.count("store.bind_task")
        before = self.tasks.get((provider, task_id), {})
        size = self._task_bytes.get((provider, task_id), 0)
        self.meter.unit("ddb.rru", _ceil_units(size, 4096))
        merged = super().bind_task(provider, task_id, files, exclusive=exclusive)
        if merged != before:
            self.meter.count("store.bind_task_write")
            size = 60 + len(task_id) + sum(len(j) + len(f) + 4 for j, f in merged.items())
            self._task_bytes[(provider, task_id)] = size
            self.meter.unit("ddb.wru", _ceil_units(size, 1024))
        return merged

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        self.meter.count("store.task_files")
        self.meter.unit("ddb.rru", _ceil_units(self._task_bytes.get((provider, task_id), 0), 4096))
        return super().task_files(provider, task_id)

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        self.meter.count("store.due")
        listed: list[Job] = []
        for next_check_at, job_id in self._due_index:
            if next_check_at > now or len(listed) >= limit:
                break
            listed.append(self.jobs[job_id])
        self.meter.count("store.due_items", len(listed))
        # A query of an index is eventually consistent: half a unit per 4 KB of what it returns.
        size = sum(self._stored[job.id].size for job in listed)
        self.meter.unit("ddb.rru", 0.5 * _ceil_units(size, 4096))
        invocation = self.meter.current
        if invocation is not None:
            fresh = {job.id for job in listed} - invocation.due_seen
            if fresh:
                invocation.rounds += 1
                invocation.due_seen |= fresh
        return listed

    def deliveries_due(self, now: datetime, *, limit: int) -> list[Job]:
        # The open-jobs index under its own key: one query per reconciler run, from the index kept
        # here (the fake scans every job, too slow for a day of uploads).
        self.meter.count("store.deliveries_due")
        due = sorted(
            (at, job.id) for job in self._delivering.values() if (at := job.next_delivery_at) and at <= now
        )[:limit]
        listed = [self.jobs[job_id] for _, job_id in due]
        size = sum(self._stored[job.id].size for job in listed)
        self.meter.unit("ddb.rru", 0.5 * _ceil_units(size, 4096))
        return listed

    def for_source(self, bucket: str, key: str, *, limit: int = 10) -> list[Job]:
        self.meter.count("store.for_source")
        return super().for_source(bucket, key, limit=limit)

    def listing(
        self, *, state: JobState | None, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        self.meter.count("store.listing")
        return super().listing(state=state, since=since, key_prefix=key_prefix, limit=limit)


def wav_header(seconds: int, rate: int = 16_000) -> bytes:
    data = seconds * rate * 2
    fmt = struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + data) + b"WAVEfmt " + fmt + b"data" + struct.pack("<I", data)


HEADER = wav_header(AUDIO_S)


class CountingStorage(InMemoryStorage):
    """The storage fake, counted. An upload is its WAV header (the only bytes the pipeline reads)
    reported at its full size; what the pipeline writes is kept as its size and ETag only."""

    def __init__(self, meter: Meter) -> None:
        super().__init__()
        self.meter = meter
        self.info: dict[tuple[str, str], ObjectInfo] = {}

    def add_upload(self, bucket: str, key: str) -> ObjectRef:
        body = HEADER + key.encode()  # unique bytes per key: its own ETag
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.objects[(bucket, key)] = (body, "audio/wav")
        size = len(HEADER) + WAV_BYTES
        self.info[(bucket, key)] = ObjectInfo(size=size, etag=etag, content_type="audio/wav")
        return ObjectRef(bucket=bucket, key=key, size=size, etag=etag)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        self.meter.count("storage.head")
        return self.info.get((bucket, key))

    def read_head(self, bucket: str, key: str, length: int) -> bytes:
        self.meter.count("storage.range_get")
        return self.objects[(bucket, key)][0][:length]

    def get(self, bucket: str, key: str) -> bytes:
        self.meter.count("storage.get")
        return self.objects[(bucket, key)][0]

    def put(self, bucket: str, key: str, body: bytes, *, content_type: str) -> None:
        self.meter.count("storage.put")
        self.meter.unit("storage.bytes_put", len(body))
        self.objects[(bucket, key)] = (b"", content_type)
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        self.info[(bucket, key)] = ObjectInfo(size=len(body), etag=etag, content_type=content_type)

    def download(self, bucket: str, key: str, dest: Path) -> None:
        self.meter.count("storage.get")
        super().download(bucket, key, dest)

    def upload(self, bucket: str, key: str, src: Path, *, content_type: str) -> None:
        self.put(bucket, key, src.read_bytes(), content_type=content_type)

    def delete(self, bucket: str, key: str) -> None:
        self.meter.count("storage.delete")
        self.objects.pop((bucket, key), None)
        self.info.pop((bucket, key), None)

    def presign_get(self, bucket: str, key: str, *, expires_s: int, version_id: str | None = None) -> str:
        self.meter.count("storage.presign")
        return super().presign_get(bucket, key, expires_s=expires_s, version_id=version_id)


LOST_ANSWER = ProviderError("READ_TIMEOUT", "Read timed out", retryable=True, maybe_done=True)


def _result_transcript(provider: str) -> Transcript:
    return Transcript(
        provider=provider,
        duration_ms=AUDIO_S * 1000,
        segments=[Segment(start_ms=0, end_ms=4_000, text="a ten-minute call, in short")],
    )


class SimProvider:
    """A ``TaskProvider`` over ``FakeProvider``: counted, finishing each task ``processing`` after
    it was created (0.5-1.5x, uniform), turning submissions away while ``quota`` tasks are in
    flight, losing the answer to a share of submissions (the task is created all the same)."""

    def __init__(
        self,
        inner: FakeProvider,
        meter: Meter,
        rng: random.Random,
        *,
        processing_s: float,
        quota: int | None,
        naive: bool,
        lost_answers: float,
        refusal_code: str,
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self.max_files_per_task = inner.max_files_per_task
        self.meter = meter
        self.rng = rng
        self.processing_s = processing_s
        self.quota = quota
        self.naive = naive
        self.lost_answers = lost_answers
        self.refusal_code = refusal_code
        self.in_flight = 0
        self.most_in_flight = 0
        self.items: dict[str, list[SubmitItem]] = {}
        self.new_tasks: list[tuple[datetime, str]] = []
        self._running: list[tuple[datetime, str]] = []
        self._transcript = _result_transcript(inner.name)

    def _now(self) -> datetime:
        return self.inner.clock()

    def settle(self) -> None:
        """Finish every task whose time has come."""
        now = self._now()
        while self._running and self._running[0][0] <= now:
            _, task_id = heapq.heappop(self._running)
            self.inner.finish(task_id, self._transcript, raw={"status": "FINISHED"})
            self.in_flight -= 1

    def model_name(self, profile: Profile) -> str:
        return self.inner.model_name(profile)

    def media_requirements(self, profile: Profile) -> MediaRequirements:
        return self.inner.media_requirements(profile)

    def submit(self, items: Sequence[SubmitItem], profile: Profile) -> list[SubmitReceipt]:
        self.settle()
        if self.quota is not None and self.in_flight >= self.quota:
            self.meter.count("provider.refused")
            raise ProviderError(
                self.refusal_code,
                "too many concurrent jobs",
                retryable=True,
                over_capacity=not self.naive,  # the naive design counts it as any refusal
            )
        self.meter.count("provider.submit")
        self.meter.count("provider.files", len(items))
        # The task goes into the fake's book as FakeProvider.submit puts it there (which also counts
        # every task it ever had to know how many are in flight: too slow for a day of uploads).
        now = self._now()
        task_id = f"task-{len(self.inner.results) + 1}"
        self.inner.results[task_id] = TaskResult(
            task_id=task_id,
            status=TaskStatus.PENDING,
            files=[FileOutcome(status=TaskStatus.PENDING, file_url=item.media_url) for item in items],
            created_at=now,
        )
        finish_at = now + timedelta(seconds=self.processing_s * self.rng.uniform(0.5, 1.5))
        heapq.heappush(self._running, (finish_at, task_id))
        self.items[task_id] = list(items)
        self.new_tasks.append((finish_at, task_id))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        if self.rng.random() < self.lost_answers:
            self.meter.count("provider.lost_answer")
            raise LOST_ANSWER  # created, and the answer lost on the way back
        return [SubmitReceipt(job_id=item.job_id, task_id=task_id) for item in items]

    def fetch(self, task_id: str) -> TaskResult:
        self.meter.count("provider.fetch")
        self.settle()
        return self.inner.fetch(task_id)

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        return outcome  # SIS's task query carries the result


class SisSim(SimProvider):
    """SIS: one file per task, a signed callback URL per attempt."""

    def claimed_task(self, body: str) -> str | None:
        return body or None  # the simulation's callback body is the task id


class DashScopeSim(SimProvider):
    """DashScope: up to 100 files per task, a push per task, a task listing; each finished file's
    result is downloaded from the URL the task query gives."""

    def load_result(self, outcome: FileOutcome) -> FileOutcome:
        self.meter.count("provider.result_download")
        return outcome

    def search_tasks(self, start: datetime, end: datetime, files: set[str]) -> TaskSearch:
        self.meter.count("provider.listing")
        self.settle()
        return cast(SearchesTasks, self.inner).search_tasks(start, end, files)


# -- one scenario ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    name: str
    provider: str  # "sis" | "dashscope"
    design: str  # "current" | "naive"
    uploads_per_day: float = 0.0  # steady arrivals (Poisson) for `window_s` ...
    window_s: float = 0.0
    burst: int = 0  # ... or this many uploads within `burst_spread_s`
    burst_spread_s: float = 60.0
    quota: int | None = None  # provider tasks in flight at once
    processing_s: float = 120.0
    lost_deliveries: float = 0.05
    lost_answers: float = 0.0
    # The submit function's event source as deployed (serverless.yml, checked against it by
    # tests/unit/test_local_options.py through the local stack's copies).
    batch_size: int = DEPLOYED_SUBMIT_BATCH_SIZE
    batching_window_s: float = DEPLOYED_SUBMIT_BATCHING_WINDOW_S
    submit_concurrency: int = DEPLOYED_SUBMIT_MAX_CONCURRENCY
    warmup_s: float = 900.0  # reconciler runs after this (and within the window) are "steady"
    max_drain_s: float = 100 * 3600.0
    seed: int = 7

    @property
    def naive(self) -> bool:
        return self.design == "naive"


@contextlib.contextmanager
def reconciler_of(design: str) -> Iterator[None]:
    """The naive design's reconciler: one round of ``limit`` due jobs, tasks asked one by one."""
    if design != "naive":
        yield
        return
    rounds = reconcile_module.MAX_ROUNDS
    reconcile_module.MAX_ROUNDS = 1
    try:
        yield
    finally:
        reconcile_module.MAX_ROUNDS = rounds


@dataclass
class Message:
    ref: ObjectRef
    visible_since: float
    receives: int = 0


@dataclass
class RunRecord:
    """One invocation, as the figures need it."""

    function: str
    start_s: float
    counts: Counter[str]
    units: Counter[str]
    duration: dict[str, float]
    cpu_s: float
    rounds: int = 0
    ran_out: bool = False
    report: dict[str, Any] = field(default_factory=dict)


class Simulation:
    def __init__(self, scenario: Scenario) -> None:
        self.sc = scenario
        self.rng = random.Random(scenario.seed)
        self.meter = Meter()
        self.clock = SettableClock()
        self.clock.now = T0
        self.storage = CountingStorage(self.meter)
        self.jobs = CountingJobStore(self.meter)
        self.provider = self._provider()
        self.ports = FakePorts(
            storage=self.storage,
            jobs=self.jobs,
            providers={self.provider.name: self.provider},
            signer=CallbackSigner(b"scale-simulation-secret-0123456789"),
            layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
            profiles=ProfileSet(profiles=[profile(name="default", prefix="", provider=scenario.provider)]),
            callback_base_url="https://cb.example.com/prod",
            # The naive design took an invocation's uploads and a run's tasks one after another.
            limits=Limits(side_by_side=1 if scenario.design == "naive" else Limits().side_by_side),
            clock=self.clock,
        )
        self.t = 0.0
        self._events: list[tuple[float, int, str, Any]] = []
        self._seq = 0
        self._active = 0  # events other than the reconciler's schedule
        self.queue: deque[Message] = deque()
        self.free_slots = scenario.submit_concurrency
        self._dispatch_at: float | None = None
        self.arrivals: dict[str, float] = {}  # job id -> when its upload landed
        self.records: list[RunRecord] = []
        self.outcomes: Counter[str] = Counter()
        self.deliveries_unknown = 0
        self.most_queued = 0
        self.oldest_queued_s = 0.0

    def _provider(self) -> SimProvider:
        sc = self.sc
        if sc.provider == "sis":
            inner = FakeProvider()
            inner.max_bytes = 300 * 1024**2
        else:
            inner = FakeProvider(max_files_per_task=100, can_search_tasks=True)
            inner.name = "dashscope"
            inner.accepts_callback_url = False
            inner.max_bytes = 2 * 1024**3
        inner.clock = self.clock
        kind = SisSim if sc.provider == "sis" else DashScopeSim
        return kind(
            inner,
            self.meter,
            self.rng,
            processing_s=sc.processing_s,
            quota=sc.quota,
            naive=sc.naive,
            lost_answers=sc.lost_answers,
            refusal_code="SIS.0312" if sc.provider == "sis" else "Throttling.AllocationQuota",
        )

    # events --------------------------------------------------------------------------------------

    def _at(self, t: float, kind: str, payload: Any = None) -> None:
        self._seq += 1
        heapq.heappush(self._events, (t, self._seq, kind, payload))
        if kind != "reconcile":
            self._active += 1

    def _arrival_times(self) -> list[float]:
        sc = self.sc
        if sc.burst:
            return sorted(self.rng.uniform(0, sc.burst_spread_s) for _ in range(sc.burst))
        rate = sc.uploads_per_day / 86_400
        times: list[float] = []
        t = 0.0
        while True:
            t += self.rng.expovariate(rate)
            if t >= sc.window_s:
                return times
            times.append(t)

    def run(self) -> None:
        for index, t in enumerate(self._arrival_times()):
            ref = self.storage.add_upload(BUCKET, f"incoming/{self.sc.name}/{index:07d}.wav")
            self.arrivals[ref.job_id()] = t
            self._at(t, "arrive", ref)
        self._at(self.rng.uniform(0, RECONCILE_EVERY_S), "reconcile")
        end = (self.sc.window_s or self.sc.burst_spread_s) + self.sc.max_drain_s
        while self._events:
            t, _, kind, payload = heapq.heappop(self._events)
            if kind != "reconcile":
                self._active -= 1
            if t > end:
                break
            self.t = max(self.t, t)
            self.clock.now = T0 + timedelta(seconds=self.t)
            if kind == "arrive":
                self.meter.count("sqs.send")
                self.queue.append(Message(payload, self.t))
                self._dispatch()
            elif kind in ("dispatch", "slot_free"):
                if kind == "slot_free":
                    self.free_slots += 1
                else:
                    self._dispatch_at = None
                self._dispatch()
            elif kind == "requeue":
                self.queue.append(payload)
                self._dispatch()
            elif kind == "task_ends":
                self._task_ends(*payload)
            elif kind == "reconcile":
                self._reconcile()
                if self._active or self.jobs.open:
                    self._at(self.t + RECONCILE_EVERY_S, "reconcile")

    def _schedule_tasks(self) -> None:
        for finish_at, task_id in self.provider.new_tasks:
            # The callback or push follows the task's end by about a second.
            self._at((finish_at - T0).total_seconds() + 1.0, "task_ends", (task_id, 1))
        self.provider.new_tasks.clear()

    def _record(self, invocation: Invocation, **extra: Any) -> RunRecord:
        record = RunRecord(
            function=invocation.function,
            start_s=invocation.start_s,
            counts=invocation.counts(),
            units=Counter(invocation.units),
            duration={cloud: invocation.elapsed(lat) for cloud, lat in LATENCIES.items()},
            cpu_s=invocation.cpu(),
            rounds=invocation.rounds,
            ran_out=invocation.ran_out,
            **extra,
        )
        self.records.append(record)
        return record

    # the upload queue and the submit function ------------------------------------------------------

    def _dispatch(self) -> None:
        sc = self.sc
        while self.free_slots > 0 and self.queue:
            oldest = self.queue[0].visible_since
            due = oldest + sc.batching_window_s
            if len(self.queue) < sc.batch_size and self.t < due:
                if self._dispatch_at is None or self._dispatch_at > due:
                    self._dispatch_at = due
                    self._at(due, "dispatch")
                return
            self.most_queued = max(self.most_queued, len(self.queue))
            self.oldest_queued_s = max(self.oldest_queued_s, self.t - oldest)
            batch = [self.queue.popleft() for _ in range(min(sc.batch_size, len(self.queue)))]
            self.free_slots -= 1
            duration = self._submit(batch)
            self._at(self.t + duration, "slot_free")

    def _submit(self, batch: list[Message]) -> float:
        receives = math.ceil(len(batch) / SQS_MESSAGES_PER_CALL)
        with self.meter.invocation("submit", self.t) as invocation:
            self.meter.count("sqs.receive", receives)
            results = submit_uploads(
                [message.ref for message in batch],
                self.ports,
                out_of_time=lambda: invocation.out_of_time(SUBMIT_BUDGET_S),
            )
            done = [m for m, r in zip(batch, results, strict=True) if r.outcome is not UploadOutcome.RETRY]
            self.meter.count("sqs.delete", math.ceil(len(done) / SQS_MESSAGES_PER_CALL))
        self.outcomes.update(result.outcome.value for result in results)
        for message, result in zip(batch, results, strict=True):
            if result.outcome is UploadOutcome.RETRY:
                message.receives += 1
                message.visible_since = self.t + QUEUE_VISIBILITY_S
                self._at(message.visible_since, "requeue", message)
        record = self._record(invocation)
        self._schedule_tasks()
        return record.duration["aws"]

    # the provider calls back -----------------------------------------------------------------------

    def _task_ends(self, task_id: str, delivery: int) -> None:
        self.provider.settle()
        if delivery == 1:
            if self.rng.random() < self.sc.lost_deliveries:
                self.meter.count("delivery.lost")
                return
            self.meter.count("delivery.first")
        if isinstance(self.provider, SisSim):
            for item in self.provider.items[task_id]:
                with self.meter.invocation("callback", self.t) as invocation:
                    self.meter.count("delivery.callback")
                    _, claim = claim_from_callback_url(item.callback_url)
                    complete_callback(claim, lambda: task_id, self.ports)
                self._record(invocation)
        else:
            with self.meter.invocation("callback", self.t, rate_per_s=DASHSCOPE_RATE_PER_S) as invocation:
                self.meter.count("delivery.push")
                try:
                    complete_task(
                        self.provider.name,
                        task_id,
                        self.ports,
                        out_of_time=lambda: invocation.out_of_time(PUSH_BUDGET_S),
                    )
                except UnknownTask:
                    # The handler answers 5xx and EventBridge delivers the push again later.
                    self.deliveries_unknown += 1
                    if delivery < 5:
                        self._at(self.t + 60.0 * delivery, "task_ends", (task_id, delivery + 1))
            self._record(invocation)
        self._schedule_tasks()

    # the reconciler ----------------------------------------------------------------------------------

    def _reconcile(self) -> None:
        with reconciler_of(self.sc.design):
            rate = DASHSCOPE_RATE_PER_S if self.sc.provider == "dashscope" else None
            with self.meter.invocation("reconcile", self.t, rate_per_s=rate) as invocation:

                def out_of_time() -> bool:
                    return invocation.out_of_time(RECONCILE_BUDGET_S)

                def time_left() -> timedelta:
                    return timedelta(
                        seconds=max(0.0, RECONCILE_BUDGET_S - invocation.elapsed(LATENCIES["aws"]))
                    )

                report = reconcile(self.ports, limit=500, out_of_time=out_of_time, time_left=time_left)
        self._record(
            invocation,
            report=report.model_dump(exclude={"streams"}),
        )
        self._schedule_tasks()


# -- figures -------------------------------------------------------------------------------------

PROVIDER_KINDS = (
    "provider.submit",
    "provider.refused",
    "provider.fetch",
    "provider.listing",
    "provider.result_download",
)
STORE_READS = ("store.get", "store.task_files", "store.bind_task")
STORE_WRITES = ("store.create", "store.save", "store.bind_task_write")
STORE_QUERIES = ("store.due", "store.deliveries_due", "store.for_source", "store.listing")
STORE_LEASES = ("store.take_lease", "store.end_lease")
STORAGE_GETS = ("storage.range_get", "storage.get")


def _quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p95": 0.0, "max": 0.0}
    ordered = sorted(values)
    return {
        "p50": ordered[len(ordered) // 2],
        "p95": ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))],
        "max": ordered[-1],
    }


def _sum(counts: Counter[str], kinds: Sequence[str]) -> float:
    return float(sum(counts[kind] for kind in kinds))


def summarise(sim: Simulation, wall_s: float) -> dict[str, Any]:
    """Per upload, per reconciler run, the drain, and the checks."""
    sc = sim.sc
    uploads = len(sim.arrivals)
    states: Counter[str] = Counter()
    failures: Counter[str] = Counter()
    latencies: list[float] = []
    unexplained = 0
    last_final = 0.0
    for job_id, arrived in sim.arrivals.items():
        job = sim.jobs.jobs.get(job_id)
        if job is None:
            states["NO_JOB"] += 1
            continue
        states[job.state.value] += 1
        if job.state is JobState.FAILED:
            code = job.error.code if job.error else ""
            failures[code or "NO_REASON"] += 1
            if not code or not (job.error and job.error.message):
                unexplained += 1
        if job.state.is_final:
            ended = ((job.finished_at or job.updated_at) - T0).total_seconds()
            latencies.append(ended - arrived)
            last_final = max(last_final, ended)
    runs = [r for r in sim.records if r.function == "reconcile"]
    steady = [r for r in runs if sc.burst or sc.warmup_s <= r.start_s <= max(sc.window_s, sc.warmup_s)]
    steady = steady or runs
    per_function: dict[str, Counter[str]] = {}
    per_function_units: dict[str, Counter[str]] = {}
    durations: dict[str, dict[str, float]] = {}
    invocations: Counter[str] = Counter()
    for record in sim.records:
        per_function.setdefault(record.function, Counter()).update(record.counts)
        per_function_units.setdefault(record.function, Counter()).update(record.units)
        invocations[record.function] += 1
        for cloud, took in record.duration.items():
            durations.setdefault(record.function, {}).setdefault(cloud, 0.0)
            durations[record.function][cloud] += took
    # What the uploads cost, per upload: the submit and callback invocations they caused, and the
    # reconciler's share. A steady day runs the reconciler 288 times whatever the load: its share is
    # the mean steady run x 288 / uploads a day. A burst's is every run until it drained.
    if sc.burst:
        reconcile_share = 1.0 / uploads
        reconcile_counts = per_function.get("reconcile", Counter())
        reconcile_units = per_function_units.get("reconcile", Counter())
        reconcile_seconds = durations.get("reconcile", {})
        reconcile_invocations = len(runs) / uploads
    else:
        reconcile_share = RUNS_PER_DAY / sc.uploads_per_day / max(len(steady), 1)
        reconcile_counts = sum((r.counts for r in steady), Counter())
        reconcile_units = sum((r.units for r in steady), Counter())
        reconcile_seconds = {cloud: sum(r.duration[cloud] for r in steady) for cloud in LATENCIES}
        reconcile_invocations = RUNS_PER_DAY / sc.uploads_per_day
    counts: Counter[str] = Counter()
    units: Counter[str] = Counter()
    for function in ("submit", "callback"):
        counts.update(per_function.get(function, Counter()))
        units.update(per_function_units.get(function, Counter()))
    per_upload: dict[str, float] = {}
    for kind in set(counts) | set(reconcile_counts) | set(sim.meter.totals):
        own = counts[kind] / uploads if kind in counts else 0.0
        if kind.startswith("sqs.") or kind.startswith("delivery."):
            own = sim.meter.totals[kind] / uploads
        per_upload[kind] = own + reconcile_counts[kind] * reconcile_share
    for kind in set(units) | set(reconcile_units):
        per_upload[kind] = units[kind] / uploads + reconcile_units[kind] * reconcile_share
    seconds = {
        function: {cloud: durations.get(function, {}).get(cloud, 0.0) / uploads for cloud in LATENCIES}
        for function in ("submit", "callback")
    }
    seconds["reconcile"] = {cloud: reconcile_seconds.get(cloud, 0.0) * reconcile_share for cloud in LATENCIES}
    per_upload_invocations = {
        "submit": invocations["submit"] / uploads,
        "callback": invocations["callback"] / uploads,
        "reconcile": reconcile_invocations,
    }

    def per(kinds: Sequence[str]) -> float:
        return sum(per_upload.get(kind, 0.0) for kind in kinds)

    run_due = [float(r.report.get("due", 0)) for r in steady]
    run_rounds = [float(r.rounds) for r in steady]
    run_aws = [r.duration["aws"] for r in steady]
    run_huawei = [r.duration["huawei"] for r in steady]
    run_cpu = [r.cpu_s for r in steady]
    all_due = [float(r.report.get("due", 0)) for r in runs]
    # Peak write rates on the job table and on the one partition of the due index (its key takes
    # one value, OPEN), spread over each invocation's duration, per minute.
    table_wru: Counter[int] = Counter()
    open_wru: Counter[int] = Counter()
    for record in sim.records:
        span = max(record.duration["aws"], 1.0)
        start = record.start_s
        for minute in range(int(start // 60), int((start + span) // 60) + 1):
            overlap = min(start + span, (minute + 1) * 60) - max(start, minute * 60)
            share = max(overlap, 0.0) / span
            table_wru[minute] += record.units["ddb.wru"] * share  # type: ignore[assignment]
            open_wru[minute] += record.units["ddb.wru_open_index"] * share  # type: ignore[assignment]
    # What the figures say each part carries (at the AWS latencies).
    looked_at = sum(float(r.report.get("due", 0)) for r in runs)
    run_seconds = sum(r.duration["aws"] for r in runs)
    per_job = run_seconds / looked_at if looked_at else None
    rounds_cap = 1 if sc.naive else reconcile_module.MAX_ROUNDS
    submit_per_upload = seconds["submit"]["aws"]
    capacity = {
        "submit_s_per_upload": submit_per_upload,
        "uploads_per_day_per_submit_slot": 86_400 / submit_per_upload if submit_per_upload else None,
        "reconcile_s_per_job": per_job,
        "jobs_per_run": min(rounds_cap * 500, RECONCILE_BUDGET_S / per_job) if per_job else None,
        # Little's law: tasks in flight = tasks a second x how long each is at the provider.
        "tasks_in_flight_needed": (
            per_upload.get("provider.submit", 0.0) * sc.uploads_per_day / 86_400 * sc.processing_s
            if not sc.burst
            else None
        ),
        "burst_drained_s": last_final if sc.burst else None,
        "burst_done_per_hour": states["DONE"] / (last_final / 3600) if sc.burst and last_final else None,
        # The share of a day's uploads the reconciler could carry (every one of them a lost
        # callback, say) at this scale: runs a day x jobs a run / uploads a day.
        "reconciler_share_of_uploads": (
            RUNS_PER_DAY * min(rounds_cap * 500, RECONCILE_BUDGET_S / per_job) / sc.uploads_per_day
            if per_job and not sc.burst
            else None
        ),
    }
    checks: dict[str, Any] = {
        "uploads": uploads,
        "final": sum(states[s] for s in ("DONE", "FAILED", "SUPERSEDED")),
        "failed_without_reason": unexplained,
        "not_final": uploads - sum(states[s] for s in ("DONE", "FAILED", "SUPERSEDED")),
        "provider_files_per_upload_max": 0,
    }
    files_per_job: Counter[str] = Counter()
    for task_items in sim.provider.items.values():
        files_per_job.update(item.job_id for item in task_items)
    checks["provider_files_per_upload_max"] = max(files_per_job.values(), default=0)
    checks["provider_files_counted"] = int(sim.meter.totals["provider.files"])
    checks["provider_files_listed"] = sum(files_per_job.values())
    # Every task's end reached us or was lost; every upload was announced once; every call counted
    # outside an invocation is one of those two.
    checks["tasks"] = len(sim.provider.items)
    checks["task_ends"] = int(sim.meter.totals["delivery.first"] + sim.meter.totals["delivery.lost"])
    checks["announced"] = int(sim.meter.totals["sqs.send"])
    in_invocations: Counter[str] = Counter()
    for record in sim.records:
        in_invocations.update(record.counts)
    outside = {"sqs.send", "delivery.lost", "delivery.first"}
    checks["calls_outside_invocations"] = sorted(
        kind for kind in set(sim.meter.totals) - outside if in_invocations[kind] != sim.meter.totals[kind]
    )
    return {
        "scenario": {
            **{k: v for k, v in sc.__dict__.items() if not k.startswith("_")},
            "quota": sc.quota,
        },
        "uploads": uploads,
        "states": dict(states),
        "failures": dict(failures),
        "wall_s": round(wall_s, 1),
        "per_upload": {
            "provider_calls": per(PROVIDER_KINDS),
            "provider_submits": per_upload.get("provider.submit", 0.0),
            "provider_refusals": per_upload.get("provider.refused", 0.0),
            "provider_queries": per_upload.get("provider.fetch", 0.0),
            "provider_listings": per_upload.get("provider.listing", 0.0),
            "provider_result_downloads": per_upload.get("provider.result_download", 0.0),
            "provider_files": per_upload.get("provider.files", 0.0),
            "store_reads": per(STORE_READS),
            "store_writes": per(STORE_WRITES),
            "store_queries": per(STORE_QUERIES),
            "store_leases": per(STORE_LEASES),
            "store_conflicts": per_upload.get("store.conflict", 0.0),
            "ddb_write_units": per_upload.get("ddb.wru", 0.0),
            "ddb_read_units": per_upload.get("ddb.rru", 0.0),
            "storage_heads": per_upload.get("storage.head", 0.0),
            "storage_gets": per(STORAGE_GETS),
            "storage_puts": per_upload.get("storage.put", 0.0),
            "storage_deletes": per_upload.get("storage.delete", 0.0),
            "storage_presigns": per_upload.get("storage.presign", 0.0),
            "storage_requests": per(("storage.head", *STORAGE_GETS, "storage.put", "storage.delete")),
            "sqs_requests": per(("sqs.send", "sqs.receive", "sqs.delete")),
            "callbacks": per(("delivery.callback", "delivery.push")),
            "deliveries_lost": per_upload.get("delivery.lost", 0.0),
            "invocations": per_upload_invocations,
            "seconds": seconds,
        },
        "reconciler": {
            "runs": len(runs),
            "steady_runs": len(steady),
            "due_mean": sum(run_due) / max(len(run_due), 1),
            "due_max": max(all_due, default=0.0),
            "rounds_mean": sum(run_rounds) / max(len(run_rounds), 1),
            "rounds_max": max((float(r.rounds) for r in runs), default=0.0),
            "seconds_aws_mean": sum(run_aws) / max(len(run_aws), 1),
            "seconds_aws_max": max((r.duration["aws"] for r in runs), default=0.0),
            "seconds_huawei_mean": sum(run_huawei) / max(len(run_huawei), 1),
            "cpu_s_mean": sum(run_cpu) / max(len(run_cpu), 1),
            "out_of_time_runs": sum(1 for r in runs if r.ran_out),
            "units_failed": sum(int(r.report.get("units_failed", 0)) for r in runs),
        },
        "drain": {
            "upload_to_final_s": _quantiles(latencies),
            "last_final_s": last_final,
            "submit_queue_most": sim.most_queued,
            "submit_queue_oldest_s": sim.oldest_queued_s,
        },
        "provider": {
            "quota": sc.quota,
            "most_in_flight": sim.provider.most_in_flight,
            "pushes_before_bound": sim.deliveries_unknown,
        },
        "peaks": {
            "table_wru_per_s": max(table_wru.values(), default=0.0) / 60,
            "due_index_wru_per_s": max(open_wru.values(), default=0.0) / 60,
        },
        "capacity": capacity,
        "submit_outcomes": dict(sim.outcomes),
        "checks": checks,
    }


def simulate(scenario: Scenario) -> dict[str, Any]:
    # The pipeline's info and warning lines are millions here; errors still show.
    before = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        started = time.perf_counter()
        sim = Simulation(scenario)
        with simulated_pools(sim.meter):
            sim.run()
        return summarise(sim, time.perf_counter() - started)
    finally:
        logging.disable(before)


# -- cost per 1 000 files ------------------------------------------------------------------------


def load_prices(path: Path = PRICES) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _unit_price(prices: dict[str, Any], section: str, item: str) -> float | None:
    entry = prices[section][item]
    if entry.get("status") == "unpriced":
        return None
    return float(entry["price"]) / float(entry["per"])


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: float
    unit: str
    low: float | None  # None: not priced in infra/prices.toml
    high: float | None
    currency: str

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _line(
    prices: dict[str, Any],
    section: str,
    key: str,
    item: str,
    quantity: float,
    unit: str,
    high_quantity: float | None = None,
) -> CostLine:
    price = _unit_price(prices, section, key)
    currency = prices[section][key]["currency"]
    top = quantity if high_quantity is None else high_quantity
    return CostLine(
        item,
        quantity,
        unit,
        None if price is None else quantity * price,
        None if price is None else top * price,
        currency,
    )


def costs_per_1000(summary: dict[str, Any], prices: dict[str, Any]) -> dict[str, Any]:
    """Per 1 000 ten-minute files: the speech, and the pipeline on AWS and on Huawei Cloud, from
    the counted calls per upload x infra/prices.toml."""
    w = prices["workload"]
    files = 1000
    pu = summary["per_upload"]
    sc = summary["scenario"]
    provider_files = pu["provider_files"] * files  # what the provider is paid for (and downloads)
    low_gb = provider_files * w["provider_download_kbps_low"] * 1000 / 8 * AUDIO_S / 1e9
    high_gb = provider_files * w["provider_download_kbps_high"] * 1000 / 8 * AUDIO_S / 1e9
    # A burst's costs are its own; a steady day's fixed costs are shared by a month of uploads.
    monthly_files = sc["uploads_per_day"] * 30 if not sc["burst"] else None
    if sc["provider"] == "sis":
        speech = _line(
            prices,
            "speech",
            "sis_recording_file",
            "speech (SIS)",
            provider_files * AUDIO_S / 3600,
            "audio hours",
        )
    else:
        speech = _line(
            prices,
            "speech",
            "dashscope_paraformer",
            "speech (DashScope, at most)",
            provider_files * AUDIO_S,
            "seconds",
        )
    inv = pu["invocations"]
    seconds = pu["seconds"]
    aws: list[CostLine] = [
        _line(
            prices, "aws", "lambda_requests", "function requests", sum(inv.values()) * files, "invocations"
        ),
        _line(
            prices,
            "aws",
            "lambda_compute_arm64",
            "function time",
            sum(s["aws"] for s in seconds.values()) * MEMORY_GB * files,
            "GB-s",
        ),
        _line(
            prices,
            "aws",
            "lambda_ephemeral_storage",
            "/tmp above 512 MB (submit, reconcile)",
            (seconds["submit"]["aws"] + seconds["reconcile"]["aws"]) * EPHEMERAL_EXTRA_GB * files,
            "GB-s",
        ),
        _line(
            prices,
            "aws",
            "sqs_requests",
            "upload queue",
            pu["sqs_requests"] * files
            + (SQS_IDLE_REQUESTS_PER_DAY / sc["uploads_per_day"] * files if not sc["burst"] else 0.0),
            "requests",
        ),
        _line(
            prices, "aws", "api_gateway_rest_requests", "callback API", pu["callbacks"] * files, "requests"
        ),
        _line(
            prices,
            "aws",
            "dynamodb_write_units",
            "job store writes",
            pu["ddb_write_units"] * files,
            "write units",
        ),
        _line(
            prices,
            "aws",
            "dynamodb_read_units",
            "job store reads",
            pu["ddb_read_units"] * files,
            "read units",
        ),
        _line(prices, "aws", "s3_put_requests", "object PUTs", pu["storage_puts"] * files, "requests"),
        _line(
            prices,
            "aws",
            "s3_get_requests",
            "object GETs/HEADs (+ the provider's download)",
            (pu["storage_heads"] + pu["storage_gets"]) * files + provider_files,
            "requests",
        ),
        _line(
            prices,
            "aws",
            "s3_transfer_out_internet",
            "data transfer out to the provider",
            low_gb,
            "GB",
            high_gb,
        ),
        _line(
            prices,
            "aws",
            "s3_storage",
            "transcripts kept, per month",
            files * w["transcript_bytes_per_file"] / 1e9,
            "GB-month",
        ),
    ]
    if monthly_files:
        secrets_line = _line(
            prices,
            "aws",
            "secrets_manager_secret",
            "Secrets Manager (fixed, a month's share)",
            w["aws_secrets"],
            "secret-months",
        )
        share = files / monthly_files
        aws.append(
            replace(
                secrets_line,
                quantity=secrets_line.quantity * share,
                low=(secrets_line.low or 0) * share,
                high=(secrets_line.high or 0) * share,
            )
        )
    # Huawei: the OBS trigger calls submit once per upload (no queue, no batches).
    huawei: list[CostLine] = [
        _line(
            prices,
            "huawei",
            "functiongraph_requests",
            "function requests (submit once per upload)",
            (1.0 + inv["callback"] + inv["reconcile"]) * files,
            "invocations",
        ),
        _line(
            prices,
            "huawei",
            "functiongraph_compute",
            "function time",
            sum(s["huawei"] for s in seconds.values()) * MEMORY_GB * files,
            "GB-s",
        ),
        _line(
            prices,
            "huawei",
            "obs_requests",
            "object requests (+ the provider's download)",
            pu["storage_requests"] * files + provider_files,
            "requests",
        ),
        _line(
            prices,
            "huawei",
            "obs_transfer_out_internet",
            "OBS traffic out (DashScope; SIS reads OBS in its region)",
            low_gb if sc["provider"] == "dashscope" else 0.0,
            "GB",
            high_gb if sc["provider"] == "dashscope" else 0.0,
        ),
    ]
    fixed_huawei = [
        f"{label} ({prices['huawei'][key]['lookup']})"
        if _unit_price(prices, "huawei", key) is None
        else label
        for key, label in (
            ("geminidb_dynamodb_instance", "GeminiDB instance (the job store)"),
            ("apig_dedicated_instance", "dedicated API Gateway"),
            ("nat_gateway", "NAT gateway"),
            ("eip_bandwidth", "EIPs"),
            ("csms_secret", "CSMS secrets"),
            ("kms_key", "KMS key"),
        )
    ]

    def total(lines: list[CostLine], which: str) -> float:
        return sum((getattr(line, which) or 0.0) for line in lines)

    return {
        "speech": speech.as_dict(),
        "aws": {
            "lines": [line.as_dict() for line in aws],
            "total_low": total(aws, "low"),
            "total_high": total(aws, "high"),
            "currency": "USD",
        },
        "huawei": {
            "lines": [line.as_dict() for line in huawei],
            "total_priced": total(huawei, "low"),
            "currency": "CNY",
            "not_priced": [line.item for line in huawei if line.low is None and line.quantity]
            + [f"fixed monthly: {item}" for item in fixed_huawei],
        },
    }


# -- the scenarios ---------------------------------------------------------------------------------

SCALES = (10_000, 100_000, 1_000_000)
# Seconds of each day simulated at its full rate (the rest of the day is the same): long enough
# for the reconciler's steady state (a lost callback is looked for 10 min after submission, so runs
# from minute 15 on see a steady flow) without simulating a million uploads.
WINDOWS: dict[str, dict[int, float]] = {
    "smoke": {10_000: 1800.0},
    "quick": {10_000: 3 * 3600.0, 100_000: 1800.0, 1_000_000: 1200.0},
    "default": {10_000: 6 * 3600.0, 100_000: 3600.0, 1_000_000: 1800.0},
    "full": {10_000: 24 * 3600.0, 100_000: 6 * 3600.0, 1_000_000: 2 * 3600.0},
}
# The burst: uploads landing within a minute, against a quota of tasks in flight (SIS's default
# quota is what the account was given; 100 is a stand-in). Quick mode scales both down by 5: the
# same drain time, a fifth of the jobs to churn.
BURSTS: dict[str, tuple[int, int]] = {
    "smoke": (200, 10),
    "quick": (2_000, 20),
    "default": (10_000, 100),
    "full": (10_000, 100),
}
# DashScope at 1M uploads a day with no push configured (every job found by the reconciler).
NO_PUSH: dict[str, float] = {"default": 1800.0, "full": 3600.0}
# The submit function's time per upload, for sizing its concurrency (a SIS call each, 16 side by
# side; DashScope one call per task of up to 100 files): measured by this simulation at the stated
# latencies (0.029 s and 0.0093 s; one after another, as the naive design submits, 0.40 and 0.047).
SUBMIT_S_PER_UPLOAD = {"sis": 0.03, "dashscope": 0.01}


def quota_for(uploads_per_day: float, processing_s: float) -> int:
    """Tasks in flight a steady day needs (Little's law: arrivals x time in the service), doubled
    for peaks and rounded up to hundreds; at least 100."""
    need = uploads_per_day / 86_400 * processing_s
    return max(100, math.ceil(2 * need / 100) * 100)


def submit_concurrency_for(uploads_per_day: float, provider: str) -> int:
    """Concurrent submit invocations a steady day needs, doubled; at least the deploy's 5."""
    need = uploads_per_day / 86_400 * SUBMIT_S_PER_UPLOAD[provider]
    return max(5, math.ceil(2 * need))


def scenarios(mode: str, providers: Sequence[str], processing_s: float, lost: float) -> list[Scenario]:
    made = []
    for provider in providers:
        for per_day, window in WINDOWS[mode].items():
            for design in ("current", "naive"):
                made.append(
                    Scenario(
                        name=f"{provider}-{per_day}-{design}",
                        provider=provider,
                        design=design,
                        uploads_per_day=per_day,
                        window_s=window,
                        quota=quota_for(per_day, processing_s) if provider == "sis" else None,
                        processing_s=processing_s,
                        lost_deliveries=lost,
                        submit_concurrency=submit_concurrency_for(per_day, provider),
                    )
                )
        if provider == "dashscope" and mode in NO_PUSH:
            # Its push needs an EventBridge rule made by hand: without it, every job is the
            # reconciler's to finish.
            for design in ("current", "naive"):
                made.append(
                    Scenario(
                        name=f"dashscope-1000000-nopush-{design}",
                        provider=provider,
                        design=design,
                        uploads_per_day=1_000_000,
                        window_s=NO_PUSH[mode],
                        processing_s=processing_s,
                        lost_deliveries=1.0,
                        submit_concurrency=submit_concurrency_for(1_000_000, provider),
                    )
                )
        burst, quota = BURSTS[mode]
        for design in ("current", "naive"):
            made.append(
                Scenario(
                    name=f"{provider}-burst{burst}-{design}",
                    provider=provider,
                    design=design,
                    burst=burst,
                    quota=quota,
                    processing_s=processing_s,
                    lost_deliveries=lost,
                )
            )
    return made


# -- printing --------------------------------------------------------------------------------------


def _f(value: float, digits: int = 2) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", " ")
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}" if abs(value) >= 0.01 else f"{value:.2g}"


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} h"
    if seconds >= 60:
        return f"{seconds / 60:.1f} min"
    return f"{seconds:.0f} s"


def _money(value: float | None, currency: str) -> str:
    if value is None:
        return "not priced"
    symbol = "$" if currency == "USD" else "¥"
    return f"{symbol}{value:.4f}" if value < 1 else f"{symbol}{value:,.2f}"


def rows(current: dict[str, Any], naive: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The figures of one scale, current design beside naive."""

    def both(get: Any, show: Any = _f) -> tuple[str, str]:
        return show(get(current)), show(get(naive))

    def pu(key: str) -> Any:
        return lambda s: s["per_upload"][key]

    def cost(cloud: str, which: str) -> Any:
        return lambda s: s["costs"][cloud][which]

    out: list[tuple[str, str, str]] = []

    def add(label: str, values: tuple[str, str]) -> None:
        out.append((label, *values))

    add("uploads simulated", both(lambda s: s["uploads"], lambda v: str(v)))
    add(
        "ended DONE / FAILED (not final)",
        both(
            lambda s: s,
            lambda s: (
                f"{s['states'].get('DONE', 0)} / {s['states'].get('FAILED', 0)}"
                + (f" ({s['checks']['not_final']})" if s["checks"]["not_final"] else "")
                + (f" {s['failures']}" if s["failures"] else "")
            ),
        ),
    )
    add("provider calls / upload", both(pu("provider_calls")))
    add(
        "  submits taken + turned away / queries / listings / result downloads",
        both(
            lambda s: s["per_upload"],
            lambda p: (
                f"{_f(p['provider_submits'])} + {_f(p['provider_refusals'])} / "
                f"{_f(p['provider_queries'])} / {_f(p['provider_listings'])} / "
                f"{_f(p['provider_result_downloads'])}"
            ),
        ),
    )
    add("provider jobs (files billed) / upload", both(pu("provider_files"), lambda v: f"{v:.3f}"))
    add(
        "job store reads / writes / queries / leases per upload",
        both(
            lambda s: s["per_upload"],
            lambda p: (
                f"{_f(p['store_reads'])} / {_f(p['store_writes'])} / {_f(p['store_queries'], 3)} / "
                f"{_f(p['store_leases'], 3)}"
            ),
        ),
    )
    add(
        "  DynamoDB write / read units per upload",
        both(lambda s: s["per_upload"], lambda p: f"{_f(p['ddb_write_units'])} / {_f(p['ddb_read_units'])}"),
    )
    add(
        "storage HEAD / GET / PUT / DELETE / presign per upload",
        both(
            lambda s: s["per_upload"],
            lambda p: (
                f"{_f(p['storage_heads'])} / {_f(p['storage_gets'])} / {_f(p['storage_puts'])} / "
                f"{_f(p['storage_deletes'])} / {_f(p['storage_presigns'])}"
            ),
        ),
    )
    add(
        "reconciler run: jobs looked at (mean / max)",
        both(lambda s: s["reconciler"], lambda r: f"{_f(r['due_mean'], 1)} / {_f(r['due_max'], 0)}"),
    )
    add(
        "  rounds (mean / max); runs out of time",
        both(
            lambda s: s["reconciler"],
            lambda r: (
                f"{_f(r['rounds_mean'], 1)} / {_f(r['rounds_max'], 0)}; "
                f"{r['out_of_time_runs']} of {r['runs']}"
            ),
        ),
    )
    add(
        "  run time, AWS mean / max (Huawei mean)",
        both(
            lambda s: s["reconciler"],
            lambda r: (
                f"{_f(r['seconds_aws_mean'])} / {_f(r['seconds_aws_max'])} s "
                f"({_f(r['seconds_huawei_mean'])} s)"
            ),
        ),
    )
    add(
        "  s per job looked at; jobs a run can carry (AWS)",
        both(
            lambda s: s["capacity"],
            lambda c: (
                "n/a"
                if c["reconcile_s_per_job"] is None
                else f"{c['reconcile_s_per_job'] * 1000:.0f} ms; {_f(c['jobs_per_run'], 0)}"
            ),
        ),
    )
    if not current["scenario"]["burst"]:
        add(
            "  share of the day's uploads its runs could carry",
            both(
                lambda s: s["capacity"]["reconciler_share_of_uploads"],
                lambda v: "n/a" if v is None else f"{v:.0%}",
            ),
        )
    add(
        "submit: s per upload (AWS); uploads/day per concurrent submit",
        both(
            lambda s: s["capacity"],
            lambda c: (
                f"{_f(c['submit_s_per_upload'], 3)} s; {_f(c['uploads_per_day_per_submit_slot'] or 0, 0)}"
            ),
        ),
    )
    add(
        "upload queue: most waiting; longest wait",
        both(
            lambda s: s["drain"],
            lambda d: f"{d['submit_queue_most']}; {_duration(d['submit_queue_oldest_s'])}",
        ),
    )
    if current["scenario"]["burst"]:
        add(
            "burst drained in (DONE files/hour)",
            both(
                lambda s: s["capacity"],
                lambda c: f"{_duration(c['burst_drained_s'])} ({_f(c['burst_done_per_hour'], 0)})",
            ),
        )
    add(
        "upload -> final: p50 / p95 / max",
        both(
            lambda s: s["drain"]["upload_to_final_s"],
            lambda q: f"{_duration(q['p50'])} / {_duration(q['p95'])} / {_duration(q['max'])}",
        ),
    )
    add(
        "provider tasks in flight: most (quota; needed)",
        both(
            lambda s: s,
            lambda s: (
                f"{s['provider']['most_in_flight']} ({s['provider']['quota'] or 'none'}"
                + (
                    f"; {_f(s['capacity']['tasks_in_flight_needed'], 0)})"
                    if s["capacity"]["tasks_in_flight_needed"] is not None
                    else ")"
                )
            ),
        ),
    )
    add(
        "peak writes: table / due index (WRU/s)",
        both(
            lambda s: s["peaks"],
            lambda p: f"{_f(p['table_wru_per_s'], 1)} / {_f(p['due_index_wru_per_s'], 1)}",
        ),
    )
    add(
        "AWS pipeline per 1 000 uploads",
        both(
            lambda s: s,
            lambda s: (
                f"{_money(cost('aws', 'total_low')(s), 'USD')}–{_money(cost('aws', 'total_high')(s), 'USD')}"
            ),
        ),
    )
    if any(s["states"].get("DONE", 0) < s["uploads"] for s in (current, naive)):
        add(
            "  per 1 000 transcripts (DONE)",
            both(
                lambda s: s,
                lambda s: (
                    "none DONE"
                    if not s["states"].get("DONE")
                    else _money(cost("aws", "total_low")(s) * s["uploads"] / s["states"]["DONE"], "USD")
                    + "–"
                    + _money(cost("aws", "total_high")(s) * s["uploads"] / s["states"]["DONE"], "USD")
                ),
            ),
        )
    add(
        "  of which job store (writes + reads)",
        both(
            lambda s: s["costs"]["aws"]["lines"],
            lambda lines: _money(
                sum(line["low"] for line in lines if line["item"].startswith("job store")), "USD"
            ),
        ),
    )
    add(
        "Huawei pipeline per 1 000 uploads (priced items)",
        both(lambda s: s["costs"]["huawei"]["total_priced"], lambda v: _money(v, "CNY")),
    )
    add(
        "speech per 1 000 uploads",
        both(lambda s: s["costs"]["speech"], lambda c: _money(c["low"], c["currency"])),
    )
    return out


def show(result: dict[str, Any]) -> None:
    print(
        f"bucketscribe scale simulation ({result['mode']}): the real use cases over counting fakes, "
        f"{result['settings']['processing_s']:.0f} s recognitions, "
        f"{result['settings']['lost_deliveries']:.0%} of callbacks/pushes lost; "
        "latencies as stated in bench/scale.py"
    )
    for group in result["groups"]:
        current, naive = group["current"], group["naive"]
        sc = current["scenario"]
        if sc["burst"]:
            title = (
                f"{sc['provider'].upper()}: a burst of {sc['burst']} uploads within a minute, "
                f"quota {sc['quota']} tasks"
            )
        else:
            window = _duration(sc["window_s"])
            title = (
                f"{sc['provider'].upper()}: {sc['uploads_per_day']:,.0f} uploads/day "
                f"({window} of the day simulated; quota {sc['quota'] or 'none'}, "
                f"submit concurrency {sc['submit_concurrency']}"
                + (", no push configured: every push lost" if sc["lost_deliveries"] >= 1 else "")
                + ")"
            ).replace(",", " ")
        print(f"\n{title}")
        table = rows(current, naive)
        width = max(len(label) for label, _, _ in table)
        left = max(len(a) for _, a, _ in table)
        print(f"  {'':<{width}}  {'current':<{left}}  naive")
        for label, a, b in table:
            print(f"  {label:<{width}}  {a:<{left}}  {b}")
    bad = [name for name, ok in result["invariants"].items() if not ok]
    print(f"\ninvariants: {'all hold' if not bad else 'BROKEN: ' + ', '.join(bad)}")
    print(f"wall time {result['wall_s']:.0f} s")


def invariants(summary: dict[str, Any]) -> dict[str, bool]:
    """Every upload ends DONE or FAILED with a reason, and the counts add up."""
    checks = summary["checks"]
    pu = summary["per_upload"]
    states = summary["states"]
    name = summary["scenario"]["name"]
    return {
        f"{name}: every upload final": checks["not_final"] == 0 and checks["final"] == summary["uploads"],
        f"{name}: only DONE or FAILED": set(states) <= {"DONE", "FAILED"},
        f"{name}: every failure has a reason": checks["failed_without_reason"] == 0,
        f"{name}: files billed = files in tasks": checks["provider_files_counted"]
        == checks["provider_files_listed"],
        f"{name}: at most max_provider_jobs per upload": checks["provider_files_per_upload_max"]
        <= Limits().max_provider_jobs,
        f"{name}: provider calls add up": abs(
            pu["provider_calls"]
            - (
                pu["provider_submits"]
                + pu["provider_refusals"]
                + pu["provider_queries"]
                + pu["provider_listings"]
                + pu["provider_result_downloads"]
            )
        )
        < 1e-9,
        f"{name}: every task's end delivered or lost": checks["task_ends"] == checks["tasks"],
        f"{name}: every upload announced once": checks["announced"] == summary["uploads"],
        f"{name}: every call counted in its invocation": not checks["calls_outside_invocations"],
        f"{name}: never over the quota": summary["provider"]["quota"] is None
        or summary["provider"]["most_in_flight"] <= summary["provider"]["quota"],
    }


def _weight(scenario: Scenario) -> float:
    return (
        scenario.burst * (5 if scenario.provider == "sis" else 1)
        or scenario.uploads_per_day * scenario.window_s / 86_400
    )


def _simulated(scenario: Scenario) -> dict[str, Any]:
    summary = simulate(scenario)
    print(f"  simulated {scenario.name}: {summary['uploads']} uploads, {summary['wall_s']:.0f} s", flush=True)
    return summary


def run(
    mode: str, providers: Sequence[str], processing_s: float, lost: float, jobs: int = 1
) -> dict[str, Any]:
    started = time.perf_counter()
    prices = load_prices()
    planned = scenarios(mode, providers, processing_s, lost)
    summaries: list[dict[str, Any]] = []
    if jobs <= 1:
        for scenario in planned:
            summaries.append(_simulated(scenario))
    else:
        # Each scenario in a process of its own (the naive design patches the reconciler's module);
        # the largest first, so the pool ends together.
        order = sorted(range(len(planned)), key=lambda i: -_weight(planned[i]))
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            done = dict(zip(order, pool.map(_simulated, [planned[i] for i in order]), strict=True))
        summaries = [done[i] for i in range(len(planned))]
    for summary in summaries:
        summary["costs"] = costs_per_1000(summary, prices)
    groups = []
    for current, naive in zip(summaries[0::2], summaries[1::2], strict=True):
        groups.append({"current": current, "naive": naive})
    checks: dict[str, bool] = {}
    for summary in summaries:
        checks.update(invariants(summary))
    return {
        "mode": mode,
        "settings": {
            "processing_s": processing_s,
            "lost_deliveries": lost,
            "latencies": {cloud: asdict(lat) for cloud, lat in LATENCIES.items()},
            "render_s_per_transcript": RENDER_S,
            "dashscope_rate_per_s": DASHSCOPE_RATE_PER_S,
            "reconcile_budget_s": RECONCILE_BUDGET_S,
            "jobs": jobs,
        },
        "groups": groups,
        "invariants": checks,
        "wall_s": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="seconds: the invariants only, nothing written")
    size.add_argument(
        "--quick", action="store_true", help="about a minute: shorter windows, a 2 000-file burst"
    )
    size.add_argument("--full", action="store_true", help="longer windows of each day")
    parser.add_argument("--providers", default="sis,dashscope", help="comma-separated: sis, dashscope")
    parser.add_argument("--processing-s", type=float, default=120.0, help="mean recognition time of a task")
    parser.add_argument("--lost", type=float, default=0.05, help="share of callbacks/pushes lost")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="scenarios run at once")
    options = parser.parse_args()
    mode = "smoke" if options.smoke else "quick" if options.quick else "full" if options.full else "default"
    providers = [p.strip() for p in options.providers.split(",") if p.strip()]
    result = run(mode, providers, options.processing_s, options.lost, options.jobs)
    if mode == "smoke":
        show(result)
    else:
        publish("scale", result, quick=mode == "quick", show=show)
    if not all(result["invariants"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()

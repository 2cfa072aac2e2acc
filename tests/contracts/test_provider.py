"""The provider port's contract for services that take recordings as tasks (``TaskProvider``), and
the capabilities each implementation claims: the unit tests' fake (as SIS stands in it, calling
back; and as DashScope, several files a task and a task listing), the SIS adapter against the SIS
emulator and the DashScope file-transcription adapter against the DashScope emulator, each with
its real SDK inside.

The emulators run on a manual clock and take ``PROCESSING_DELAY_S`` (on that clock) before they
start a task, so a task is deterministically unfinished until the test moves the clock; the fake is
told its result instead. Waits are on conditions with deadlines, never on the wall clock.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from bucketscribe_local.dashscope_server import DashScopeEmulator
from bucketscribe_local.emulator_kit.clock import ManualClock
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.sis_server import SisEmulator
from bucketscribe_local.speech import FixedSpeechEngine
from pydantic import SecretStr

from bucketscribe.domain.profile import Profile
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.ports.provider import (
    CallsBack,
    Pushes,
    PushRejected,
    SearchesTasks,
    StreamingProvider,
    SubmitItem,
    TaskProvider,
    TaskResult,
    TaskStatus,
    file_key,
)
from bucketscribe.providers import registry
from bucketscribe.providers.dashscope.files import DashScopeConfig, DashScopeProvider
from bucketscribe.providers.sis.adapter import SisCredentials, SisProvider
from tests.fakes import FakeProvider
from tests.profiles import profile as make_profile
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PROCESSING_DELAY_S = 60
DASHSCOPE_KEY = "sk-contract"
WAIT_S = 15.0
CAPABILITIES: tuple[type, ...] = (SearchesTasks, CallsBack, Pushes, StreamingProvider)


@dataclass(frozen=True)
class Delivery:
    """A callback or push as it arrived: its body and its headers (names lower-cased)."""

    body: str
    headers: dict[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Receiver:
    """Where the emulators deliver: SIS's callbacks and DashScope's task-finished pushes."""

    def __init__(self) -> None:
        self._deliveries: list[Delivery] = []
        self._lock = threading.Lock()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        self.server = BackgroundHttpServer(app)

    async def _receive(self, request: web.Request) -> web.Response:
        delivery = Delivery(
            await request.text(), {name.lower(): value for name, value in request.headers.items()}
        )
        with self._lock:
            self._deliveries.append(delivery)
        return web.json_response({"ok": True})

    def delivery_naming(self, task_id: str) -> Delivery:
        """The first delivery whose body names ``task_id`` (waited for)."""
        found: list[Delivery] = []

        def delivered() -> bool:
            with self._lock:
                found.extend(delivery for delivery in self._deliveries if task_id in delivery.body)
            return bool(found)

        wait_until(delivered, timeout_s=WAIT_S, what=f"a delivery naming task {task_id}")
        return found[0]


def nothing_delivered(task_id: str) -> Delivery:
    raise AssertionError("this provider neither calls back nor pushes")


@dataclass
class ProviderUnderTest:
    provider: TaskProvider
    profile: Profile
    # Has the provider do its work on a submitted task: the fake is told its result; an emulator's
    # clock passes its processing delay.
    work: Callable[[str], None]
    # Lets the time the provider keeps a finished result pass.
    outlive_results: Callable[[str], None]
    # Now, on the provider's clock (task creation times are on it).
    now: Callable[[], datetime]
    # The capability protocols it claims.
    claims: frozenset[type]
    # Where a provider that calls back is told to call, per submission.
    callback_url: Callable[[], str | None] = lambda: None
    # Its callback or push for a finished task, as delivered (waited for).
    delivered: Callable[[str], Delivery] = nothing_delivered


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    receiving = Receiver()
    with receiving.server:
        yield receiving


@pytest.fixture(scope="module")
def sis_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def sis(sis_clock: ManualClock) -> Iterator[SisEmulator]:
    faults = FaultPlan(processing_delay_s=PROCESSING_DELAY_S)
    with SisEmulator(engine=FixedSpeechEngine("hello from sis"), clock=sis_clock, faults=faults) as emulator:
        yield emulator


@pytest.fixture(scope="module")
def dashscope_clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def dashscope(dashscope_clock: ManualClock, receiver: Receiver) -> Iterator[DashScopeEmulator]:
    with DashScopeEmulator(
        api_keys=[DASHSCOPE_KEY],
        engine=FixedSpeechEngine("hello from paraformer"),
        clock=dashscope_clock,
        faults=FaultPlan(processing_delay_s=PROCESSING_DELAY_S),
        # The service's query rate is counted on the clock, which only the tests move: not here.
        query_rps=None,
        push_target_url=f"{receiver.server.url}/pushes",
    ) as emulator:
        yield emulator


def retention_s(provider_name: str) -> float:
    """How long the provider's plugin says the service keeps a finished result."""
    retention = registry.plugin(provider_name).result_retention
    assert retention is not None
    return retention.total_seconds()


def fake_transcript() -> Transcript:
    return Transcript(
        provider="sis",
        duration_ms=500,
        segments=[Segment(start_ms=0, end_ms=500, text="hello from the fake")],
    )


def fake_under_test(provider: FakeProvider, claims: frozenset[type]) -> ProviderUnderTest:
    return ProviderUnderTest(
        provider=provider,
        profile=make_profile(),
        work=lambda task_id: provider.finish(task_id, fake_transcript()),
        outlive_results=provider.expire,
        now=lambda: datetime.now(UTC),
        claims=claims,
        # The fake stands in for SIS: it is called back with SIS's callback body.
        delivered=lambda task_id: Delivery(json.dumps({"job_id": task_id, "status": "FINISHED"})),
    )


def emulated(
    provider: TaskProvider, profile: Profile, clock: ManualClock, receiver: Receiver, claims: frozenset[type]
) -> ProviderUnderTest:
    def work(task_id: str) -> None:
        clock.advance(PROCESSING_DELAY_S)

    def outlive_results(task_id: str) -> None:
        clock.advance(retention_s(provider.name))

    return ProviderUnderTest(
        provider=provider,
        profile=profile,
        work=work,
        outlive_results=outlive_results,
        now=clock.datetime,
        claims=claims,
        callback_url=lambda: f"{receiver.server.url}/callbacks/{uuid.uuid4().hex}",
        delivered=receiver.delivery_naming,
    )


@pytest.fixture(params=["fake", "fake-listing", "sis", "dashscope"])
def service(request: pytest.FixtureRequest) -> ProviderUnderTest:
    if request.param == "fake":
        return fake_under_test(FakeProvider(), frozenset({CallsBack}))
    if request.param == "fake-listing":
        listing = FakeProvider(max_files_per_task=100, can_search_tasks=True)
        listing.accepts_callback_url = False
        return fake_under_test(listing, frozenset({SearchesTasks}))
    receiver: Receiver = request.getfixturevalue("receiver")
    if request.param == "sis":
        sis: SisEmulator = request.getfixturevalue("sis")
        credentials = SisCredentials(ak=sis.ak, sk=SecretStr(sis.sk), project_id=sis.project_id)
        return emulated(
            SisProvider(credentials, endpoint=sis.url),
            make_profile(),
            request.getfixturevalue("sis_clock"),
            receiver,
            frozenset({CallsBack}),
        )
    dashscope: DashScopeEmulator = request.getfixturevalue("dashscope")
    config = DashScopeConfig(api_key=SecretStr(DASHSCOPE_KEY), base_http_url=dashscope.http_api_url)
    return emulated(
        DashScopeProvider(config),
        make_profile(provider="dashscope"),
        request.getfixturevalue("dashscope_clock"),
        receiver,
        frozenset({SearchesTasks, Pushes}),
    )


def finished(service: ProviderUnderTest, task_id: str) -> TaskResult:
    """The task's result once the provider says it is no longer pending (waited for)."""
    results: list[TaskResult] = []

    def ended() -> bool:
        results.append(service.provider.fetch(task_id))
        return results[-1].status is not TaskStatus.PENDING

    wait_until(ended, timeout_s=WAIT_S, what=f"task {task_id} to end")
    return results[-1]


def submitted(service: ProviderUnderTest, url: str, job_id: str = "job-1") -> str:
    """Submit one file; its task id."""
    item = SubmitItem(job_id=job_id, media_url=url, callback_url=service.callback_url())
    (receipt,) = service.provider.submit([item], service.profile)
    assert receipt.job_id == job_id and receipt.error is None and receipt.task_id
    return receipt.task_id


def test_it_is_a_task_provider_with_the_capabilities_it_claims(service: ProviderUnderTest) -> None:
    assert isinstance(service.provider, TaskProvider)
    assert {capability for capability in CAPABILITIES if isinstance(service.provider, capability)} == (
        service.claims
    )


def test_it_names_the_model_its_plugin_names(service: ProviderUnderTest) -> None:
    """A job records the adapter's model name; ``bucketscribe normalize`` reads results through the
    plugin: the two must agree, and what a job takes is this provider's."""
    provider, profile = service.provider, service.profile
    assert provider.model_name(profile) == registry.plugin(provider.name).model_name(profile)
    assert provider.media_requirements(profile).provider == provider.name


def test_a_submitted_file_is_a_task_that_ends_with_its_transcript(
    service: ProviderUnderTest, media: str
) -> None:
    url = f"{media}/{uuid.uuid4().hex}.wav?X-Amz-Signature=abc"
    task_id = submitted(service, url)
    assert service.provider.fetch(task_id).status is TaskStatus.PENDING  # the provider has not worked yet
    service.work(task_id)
    result = finished(service, task_id)
    assert result.status is TaskStatus.DONE and result.task_id == task_id
    outcome = service.provider.load_result(result.outcome_for(file_key(url)))
    assert outcome.status is TaskStatus.DONE and outcome.raw is not None
    assert outcome.transcript is not None and outcome.transcript.text.startswith("hello from")


def test_an_unknown_task_is_not_found(service: ProviderUnderTest) -> None:
    assert service.provider.fetch(str(uuid.uuid4())).status is TaskStatus.NOT_FOUND


def test_a_result_is_not_found_once_the_provider_no_longer_keeps_it(
    service: ProviderUnderTest, media: str
) -> None:
    """For the emulators the time their plugin says the service keeps results passes on their
    clock (SIS 72 h, DashScope 24 h); the fake is told the result expired."""
    task_id = submitted(service, f"{media}/{uuid.uuid4().hex}.wav")
    service.work(task_id)
    assert finished(service, task_id).status is TaskStatus.DONE
    service.outlive_results(task_id)
    assert service.provider.fetch(task_id).status is TaskStatus.NOT_FOUND


@pytest.mark.parametrize("service", ["fake-listing", "dashscope"], indirect=True)
def test_one_task_carries_several_files_and_each_outcome_maps_back(
    service: ProviderUnderTest, media: str
) -> None:
    provider = service.provider
    assert provider.max_files_per_task >= 2, "a provider whose tasks carry several files"
    urls = [f"{media}/{name}-{uuid.uuid4().hex}.wav?sig={n}" for n, name in enumerate(("agent", "customer"))]
    items = [SubmitItem(job_id=f"job-{n}", media_url=url) for n, url in enumerate(urls)]
    receipts = provider.submit(items, service.profile)
    assert [receipt.job_id for receipt in receipts] == ["job-0", "job-1"]  # one each, in order
    (task_id,) = {receipt.task_id for receipt in receipts}
    assert task_id is not None
    service.work(task_id)
    result = finished(service, task_id)
    for url in urls:
        outcome = result.outcome_for(file_key(url))
        assert outcome.status is TaskStatus.DONE
        assert outcome.file_url is not None and file_key(outcome.file_url) == file_key(url)


@pytest.mark.parametrize("service", ["fake", "sis"], indirect=True)
def test_a_callback_names_its_task(service: ProviderUnderTest, media: str) -> None:
    provider = service.provider
    assert isinstance(provider, CallsBack)
    task_id = submitted(service, f"{media}/{uuid.uuid4().hex}.wav")
    service.work(task_id)
    assert provider.claimed_task(service.delivered(task_id).body) == task_id


@pytest.mark.parametrize("service", ["fake", "sis"], indirect=True)
@pytest.mark.parametrize(
    "body", ["", "not json", "[]", '{"status": "FINISHED"}', '{"job_id": 7}', '{"job_id": ""}']
)
def test_a_callback_that_names_no_task_claims_none(service: ProviderUnderTest, body: str) -> None:
    assert isinstance(service.provider, CallsBack)
    assert service.provider.claimed_task(body) is None


@pytest.mark.parametrize("service", ["dashscope"], indirect=True)
def test_a_push_names_its_task_and_when_it_was_sent(service: ProviderUnderTest, media: str) -> None:
    provider = service.provider
    assert isinstance(provider, Pushes)
    task_id = submitted(service, f"{media}/{uuid.uuid4().hex}.wav")
    service.work(task_id)
    delivery = service.delivered(task_id)
    push = provider.parse_push(delivery.body, delivery.header)
    # The push route refuses one sent too long ago (a replay): the time must be there to check.
    assert push.task_id == task_id and push.sent_at is not None


@pytest.mark.parametrize("service", ["dashscope"], indirect=True)
@pytest.mark.parametrize("body", ["", "not json", "{}", '{"data": {"task_id": "t"}}'])
def test_a_push_that_is_no_task_finished_event_is_rejected(service: ProviderUnderTest, body: str) -> None:
    assert isinstance(service.provider, Pushes)
    with pytest.raises(PushRejected):
        service.provider.parse_push(body, Delivery(body).header)


@pytest.mark.parametrize("service", ["fake-listing", "dashscope"], indirect=True)
def test_a_task_is_found_in_the_listing_of_its_creation_time_once_it_ended(
    service: ProviderUnderTest, media: str
) -> None:
    """How a task whose submit answer was lost is found: by its file, among the tasks created
    around the submission; one still running shows no files yet, only that it is undecided."""
    provider = service.provider
    assert isinstance(provider, SearchesTasks)
    url = f"{media}/{uuid.uuid4().hex}.wav?sig=1"
    started = service.now() - timedelta(minutes=1)
    task_id = submitted(service, url)
    window_end = service.now() + timedelta(minutes=1)
    running = provider.search_tasks(started, window_end, {file_key(url)})
    assert running.found == {} and running.undecided >= 1
    service.work(task_id)
    assert finished(service, task_id).status is TaskStatus.DONE
    assert provider.search_tasks(started, window_end, {file_key(url)}).found == {file_key(url): task_id}
    earlier = provider.search_tasks(started - timedelta(hours=1), started, {file_key(url)})
    assert earlier.found == {}

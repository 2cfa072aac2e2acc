"""Webhooks over the real wire: the HTTP sender against receivers on 127.0.0.1, checked with the
``standardwebhooks`` package's own verifier, driven through the pipeline (a finished job's event,
then reconciler runs on a driven clock); and the addresses a webhook may not go to.

The receivers listen on 127.0.0.1, which a deployment refuses, so the delivery tests switch
BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE's setting on; the refusal tests leave it off and route a
public-looking name to a TLS receiver here through a resolver and a connector of their own, so the
sender speaks HTTPS with certificate checks as it would to a receiver on the internet.
"""

from __future__ import annotations

import json
import socket
import ssl
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks import Webhook, WebhookVerificationError

from bucketscribe.domain.callback_tokens import CallbackSigner
from bucketscribe.domain.job import Job, JobError
from bucketscribe.domain.job_events import Channel, DeliveryState, EventDelivery
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.profile import ProfileSet
from bucketscribe.domain.transcript import Segment, Transcript
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.pipeline.complete import complete_task
from bucketscribe.pipeline.reconcile import reconcile
from bucketscribe.pipeline.submit import submit_uploads
from bucketscribe.ports.webhooks import WebhookNotDelivered, WebhookRefused
from bucketscribe.webhooks.sender import TIMEOUT_COOL_DOWN_S, HttpWebhookSender
from tests.audio import tone_wav
from tests.fakes import FakePorts, FakeProvider, InMemoryJobStore, InMemoryStorage, SettableClock, known
from tests.job_events import sample_event
from tests.profiles import profile
from tests.webhook_receiver import SECRET, Answer, Arrived, WebhookReceiver, self_signed

pytestmark = pytest.mark.integration

BUCKET = "recordings"
PUBLIC = "93.184.215.14"  # a public address: the test network routes it to a receiver here
OTHER_PUBLIC = "93.184.215.15"


class StoredSecrets:
    """A secret store holding the webhook's signing secret under a name."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads: list[str] = []

    def get(self, name: str) -> str | None:
        self.reads.append(name)
        return self.values.get(name)


class Ticks:
    """The sender's monotonic clock, moved by the test (the timeout cool-down reads it)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Network:
    """Names resolved and addresses dialled as a test says: a public address can be routed to a
    receiver on 127.0.0.1; every resolution and every dial is recorded."""

    def __init__(self, names: dict[str, list[str]], routes: dict[tuple[str, int], int]) -> None:
        self.names = names
        self.routes = routes
        self.resolved: list[str] = []
        self.dialled: list[tuple[str, int]] = []

    def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        return self.names.get(host, [host])

    def connect(self, address: tuple[str, int], timeout: float) -> socket.socket:
        self.dialled.append(address)
        local = self.routes.get(address)
        assert local is not None, f"the test network has no route to {address}"
        return socket.create_connection(("127.0.0.1", local), timeout)


class Rebinding(Network):
    """A name that answers a public address to the first question and a loopback one to any later
    question (DNS rebinding): only the address that was checked may be dialled."""

    def resolve(self, host: str, port: int) -> list[str]:
        self.resolved.append(host)
        return [PUBLIC] if len(self.resolved) == 1 else ["127.0.0.1"]


@pytest.fixture
def provider() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
def ports(provider: FakeProvider) -> FakePorts:
    """The pipeline on in-memory fakes (as the unit tests have it), its clock driven by the test."""
    clock = SettableClock()
    provider.clock = clock
    return FakePorts(
        storage=InMemoryStorage(),
        jobs=InMemoryJobStore(),
        providers={"sis": provider},
        signer=CallbackSigner(b"integration-test-secret-0123"),
        layout=OutputLayout(input_prefix="incoming/", output_prefix="transcripts/"),
        profiles=ProfileSet(profiles=[profile()]),
        callback_base_url="https://cb.example.com/prod",
        clock=clock,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as running:
        yield running


@pytest.fixture
def ticks() -> Ticks:
    return Ticks()


@pytest.fixture
def secrets() -> StoredSecrets:
    return StoredSecrets({"bucketscribe-test-webhook-calls": SECRET})


@pytest.fixture
def told(ports: FakePorts, receiver: WebhookReceiver, ticks: Ticks, secrets: StoredSecrets) -> FakePorts:
    """The pipeline with the HTTP sender (a short timeout) and a profile whose webhook is ``receiver``."""
    ports.webhooks = HttpWebhookSender(secrets, allow_private=True, timeout_s=0.5, monotonic=ticks)
    ports.profiles = ProfileSet(
        profiles=[profile(webhook_url=receiver.url, webhook_secret_name="bucketscribe-test-webhook-calls")]
    )
    return ports


def finished(ports: FakePorts, provider: FakeProvider, key: str = "incoming/a.wav") -> Job:
    ports.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], ports)
    job = known(ports.jobs.get(result.job_id))
    transcript = Transcript(
        provider="sis", duration_ms=1000, segments=[Segment(start_ms=0, end_ms=900, text="hi")]
    )
    provider.finish(job.provider_task_id, transcript)
    (completion,) = complete_task("sis", known(job.provider_task_id), ports)
    return known(completion.job)


def webhook_delivery(ports: FakePorts, job: Job) -> EventDelivery:
    return known(known(ports.jobs.get(job.id)).events[-1].delivery(Channel.WEBHOOK))


def verified(arrived: Arrived) -> dict[str, object]:
    payload: dict[str, object] = Webhook(SECRET).verify(arrived.body, arrived.headers)
    return payload


def reconcile_every_5_minutes(ports: FakePorts, *, for_: timedelta) -> None:
    end = ports.clock.now + for_
    while ports.clock.now < end:
        ports.clock.now += timedelta(minutes=5)
        reconcile(ports)


# -- delivered, signed ---------------------------------------------------------------------------


def test_a_finished_jobs_webhook_arrives_signed_and_verifies_with_standardwebhooks(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver, secrets: StoredSecrets
) -> None:
    job = finished(told, provider)
    (arrived,) = receiver.received()
    payload = verified(arrived)
    assert payload["type"] == "transcript.completed"
    data = payload["data"]
    assert isinstance(data, dict)
    assert (data["job_id"], data["bucket"], data["key"]) == (job.id, BUCKET, "incoming/a.wav")
    assert data["outputs"] == job.outputs
    assert arrived.headers["webhook-id"] == job.events[-1].id
    assert arrived.headers["content-type"] == "application/json"
    assert arrived.path == "/hooks/bucketscribe"
    # The secret came from the store, by the profile's name for it, and is nowhere in the request.
    assert secrets.reads == ["bucketscribe-test-webhook-calls"]
    assert SECRET.encode() not in arrived.body and SECRET not in json.dumps(arrived.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=").verify(arrived.body, arrived.headers)
    assert webhook_delivery(told, job).state is DeliveryState.DELIVERED


def test_a_receiver_answering_500_gets_the_same_event_again_from_the_reconciler(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver
) -> None:
    receiver.answer(Answer(status=500), Answer(status=502))
    job = finished(told, provider)
    assert webhook_delivery(told, job).last_error == "the receiver answered HTTP 500"
    reconcile_every_5_minutes(told, for_=timedelta(minutes=10))
    arrived = receiver.received()
    assert len(arrived) == 3
    assert {a.headers["webhook-id"] for a in arrived} == {job.events[-1].id}
    assert {a.body for a in arrived} == {arrived[0].body}
    for attempt in arrived:
        verified(attempt)  # each attempt is signed afresh, at its own time
    delivery = webhook_delivery(told, job)
    assert (delivery.state, delivery.attempts) == (DeliveryState.DELIVERED, 3)


def test_a_receiver_that_times_out_is_tried_again_later_and_not_waited_for_meanwhile(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver, ticks: Ticks
) -> None:
    receiver.answer(Answer(hang=True))
    first = finished(told, provider)
    assert webhook_delivery(told, first).last_error == "127.0.0.1 did not answer within 0.5 s"
    # Another job ends at once: the receiver just timed out, so this worker does not wait again.
    second = finished(told, provider, key="incoming/b.wav")
    assert len(receiver.received()) == 1
    assert (webhook_delivery(told, second).last_error or "").startswith("not tried: 127.0.0.1 timed out")
    ticks.now += TIMEOUT_COOL_DOWN_S
    reconcile_every_5_minutes(told, for_=timedelta(minutes=5))
    ids = [a.headers["webhook-id"] for a in receiver.received()]
    assert sorted(ids[1:]) == sorted([first.events[-1].id, second.events[-1].id])
    assert {webhook_delivery(told, job).state for job in (first, second)} == {DeliveryState.DELIVERED}


def test_a_receiver_down_for_hours_gets_the_event_from_the_reconciler_once_it_is_back(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver
) -> None:
    receiver.stop()  # nothing listens: every connection is refused
    job = finished(told, provider)
    reconcile_every_5_minutes(told, for_=timedelta(hours=3))
    down = webhook_delivery(told, job)
    assert (down.state, down.attempts) == (DeliveryState.PENDING, 5)  # 0, 5, 10, 40 and 160 min
    assert "ConnectionRefusedError" in (down.last_error or "")
    receiver.start()  # back, on the same address
    reconcile_every_5_minutes(told, for_=timedelta(hours=5))
    (arrived,) = receiver.received()
    assert arrived.headers["webhook-id"] == job.events[-1].id
    verified(arrived)
    assert webhook_delivery(told, job).state is DeliveryState.DELIVERED


def test_a_failed_jobs_webhook_names_the_error_and_its_report(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver
) -> None:
    key = "incoming/silent.wav"
    told.storage.add(BUCKET, key, tone_wav(1))
    (result,) = submit_uploads([ObjectRef(bucket=BUCKET, key=key)], told)
    job = known(told.jobs.get(result.job_id))
    provider.fail(
        job.provider_task_id,
        JobError(code="SIS.0001", message="silence, see https://x.example/?token=abc123456"),
    )
    complete_task("sis", known(job.provider_task_id), told)
    (arrived,) = receiver.received()
    payload = verified(arrived)
    data = payload["data"]
    assert isinstance(data, dict) and payload["type"] == "transcript.failed"
    assert data["error"]["code"] == "SIS.0001"
    assert "abc123456" not in arrived.body.decode()
    assert data["error_report"] == "transcripts/silent.wav.error.json"


def test_the_readmes_five_lines_verify_a_real_delivery(
    told: FakePorts, provider: FakeProvider, receiver: WebhookReceiver
) -> None:
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    code = readme.split("<!-- verify-webhook -->\n```python\n", 1)[1].split("```", 1)[0]
    assert len([line for line in code.splitlines() if line.strip()]) <= 5
    namespace: dict[str, Any] = {}
    exec(code, namespace)  # noqa: S102 - the README's own example, run as a reader would
    job = finished(told, provider)
    (arrived,) = receiver.received()
    event = namespace["on_delivery"](arrived.body, arrived.headers, SECRET)
    assert (event["type"], event["data"]["job_id"]) == ("transcript.completed", job.id)
    with pytest.raises(WebhookVerificationError):
        namespace["on_delivery"](arrived.body.replace(b"DONE", b"FAIL"), arrived.headers, SECRET)


# -- addresses a webhook may not go to ----------------------------------------------------------


def refusing_sender(network: Network, *, tls: ssl.SSLContext | None = None) -> HttpWebhookSender:
    return HttpWebhookSender(
        StoredSecrets({}),
        default_secret=SecretStr(SECRET),
        resolve=network.resolve,
        connect=network.connect,
        tls=tls,
        timeout_s=2,
    )


@pytest.mark.parametrize(
    ("url", "names", "why"),
    [
        ("https://127.0.0.1/hook", {}, "loopback"),
        ("https://[::1]/hook", {}, "loopback"),
        ("https://10.20.30.40/hook", {}, "private"),
        ("https://192.168.1.10/hook", {}, "private"),
        ("https://169.254.169.254/latest/meta-data/", {}, "metadata"),
        ("https://[fd00:ec2::254]/latest", {}, "metadata"),
        ("https://100.100.100.200/latest", {}, "metadata"),
        ("https://100.64.1.1/hook", {}, "private or reserved"),
        ("https://224.0.0.251/hook", {}, "multicast"),
        ("https://[::ffff:10.0.0.1]/hook", {}, "private"),
        ("https://[fe80::1]/hook", {}, "link-local"),
        ("https://0.0.0.0/hook", {}, "unspecified"),
        ("https://internal.example.test/hook", {"internal.example.test": ["10.9.8.7"]}, "private"),
        # One private address among public ones is enough: which a connection gets is not ours.
        ("https://mixed.example.test/hook", {"mixed.example.test": [PUBLIC, "172.16.0.9"]}, "private"),
    ],
)
def test_private_loopback_link_local_multicast_and_metadata_addresses_are_refused_before_connecting(
    url: str, names: dict[str, list[str]], why: str
) -> None:
    network = Network(names, {})
    with pytest.raises(WebhookRefused, match=why):
        refusing_sender(network).send(url, None, sample_event())
    assert network.dialled == []


def test_a_name_that_really_resolves_to_loopback_is_refused() -> None:
    sender = HttpWebhookSender(StoredSecrets({}), default_secret=SecretStr(SECRET))
    with pytest.raises(WebhookRefused, match=r"localhost resolves to (127\.0\.0\.1|::1), a loopback address"):
        sender.send("https://localhost:9/hook", None, sample_event())


def test_plain_http_is_refused_unless_private_addresses_are_allowed() -> None:
    network = Network({"hooks.example.test": [PUBLIC]}, {})
    with pytest.raises(WebhookRefused, match="not HTTPS"):
        refusing_sender(network).send("http://hooks.example.test/hook", None, sample_event())
    assert network.resolved == []


@pytest.fixture
def public_receiver() -> Iterator[tuple[WebhookReceiver, ssl.SSLContext]]:
    """A TLS receiver here whose certificate names hooks.example.test and other.example.test."""
    with (
        self_signed("hooks.example.test", "other.example.test") as (server_tls, client_tls),
        WebhookReceiver(tls=server_tls) as running,
    ):
        yield running, client_tls


def test_https_to_a_public_name_is_delivered_to_the_checked_address_with_the_certificate_checked(
    public_receiver: tuple[WebhookReceiver, ssl.SSLContext],
) -> None:
    receiver, client_tls = public_receiver
    network = Rebinding({}, {(PUBLIC, 443): receiver.port})
    refusing_sender(network, tls=client_tls).send("https://hooks.example.test/hooks/x", None, sample_event())
    (arrived,) = receiver.received()
    verified(arrived)
    assert network.dialled == [(PUBLIC, 443)]
    # A certificate for another name is not accepted.
    wrong = Network({"wrong.example.test": [PUBLIC]}, {(PUBLIC, 443): receiver.port})
    with pytest.raises(WebhookNotDelivered, match="SSLCertVerificationError"):
        refusing_sender(wrong, tls=client_tls).send(
            "https://wrong.example.test/hooks/x", None, sample_event()
        )


def test_a_redirect_to_a_private_address_is_refused_and_one_to_a_public_address_followed(
    public_receiver: tuple[WebhookReceiver, ssl.SSLContext],
) -> None:
    receiver, client_tls = public_receiver
    names = {
        "hooks.example.test": [PUBLIC],
        "other.example.test": [OTHER_PUBLIC],
        "internal.example.test": ["10.0.0.7"],
    }
    network = Network(names, {(PUBLIC, 443): receiver.port, (OTHER_PUBLIC, 443): receiver.port})
    sender = refusing_sender(network, tls=client_tls)
    receiver.answer(Answer(status=307, headers={"location": "https://internal.example.test/steal"}))
    with pytest.raises(WebhookRefused, match=r"internal\.example\.test resolves to 10\.0\.0\.7"):
        sender.send("https://hooks.example.test/hooks/x", None, sample_event())
    assert network.dialled == [(PUBLIC, 443)]
    receiver.answer(Answer(status=308, headers={"location": "https://other.example.test/moved"}))
    sender.send("https://hooks.example.test/hooks/x", None, sample_event())
    assert [a.path for a in receiver.received()] == ["/hooks/x", "/hooks/x", "/moved"]
    assert {a.headers["webhook-id"] for a in receiver.received()} == {sample_event().id}
    # A redirect that would turn the POST into a GET is not followed.
    receiver.answer(Answer(status=302, headers={"location": "https://other.example.test/moved"}))
    with pytest.raises(WebhookNotDelivered, match="HTTP 302"):
        sender.send("https://hooks.example.test/hooks/x", None, sample_event())


def test_a_refused_address_fails_the_delivery_at_once_and_says_why_in_the_status(
    ports: FakePorts, provider: FakeProvider
) -> None:
    ports.webhooks = HttpWebhookSender(StoredSecrets({}), default_secret=SecretStr(SECRET))
    ports.profiles = ProfileSet(profiles=[profile(webhook_url="https://169.254.169.254/latest/api/token")])
    job = finished(ports, provider)
    delivery = webhook_delivery(ports, job)
    assert (delivery.state, delivery.attempts) == (DeliveryState.FAILED, 1)
    assert "the instance metadata service" in (delivery.last_error or "")
    reconcile_every_5_minutes(ports, for_=timedelta(hours=1))
    assert webhook_delivery(ports, job).attempts == 1

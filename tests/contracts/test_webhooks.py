"""The webhook port's contract: a send that returns reached the receiver with the event's id and
body; a receiver that does not take it (an answer other than 2xx) makes the send raise
``WebhookNotDelivered``, and sending again carries the same id and the same body.

Implementations: the fake the unit tests use, and the HTTP sender against a real receiver on
127.0.0.1 (hence BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE's switch on; its signatures, addresses,
redirects and timeouts are tests/integration/test_webhooks.py's).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from bucketscribe.ports.secrets import NoSecretStore
from bucketscribe.ports.webhooks import WebhookNotDelivered, WebhookSender
from bucketscribe.webhooks.sender import HttpWebhookSender
from tests.fakes import FakeWebhooks
from tests.job_events import sample_event
from tests.webhook_receiver import SECRET, Answer, WebhookReceiver

pytestmark = pytest.mark.integration


@dataclass
class WebhooksUnderTest:
    sender: WebhookSender
    url: str
    # (webhook-id, body) of every request that reached the receiver, in order.
    received: Callable[[], list[tuple[str, bytes]]]
    # The receiver answers the next request with HTTP 500.
    refuse_next: Callable[[], None]


def fake() -> WebhooksUnderTest:
    sender = FakeWebhooks()
    return WebhooksUnderTest(
        sender,
        "https://hooks.example.com/x",
        lambda: [(event_id, body) for _, _, event_id, body in sender.sent],
        lambda: sender.fail_next(1),
    )


def http(receiver: WebhookReceiver) -> WebhooksUnderTest:
    sender = HttpWebhookSender(NoSecretStore(), default_secret=SecretStr(SECRET), allow_private=True)
    return WebhooksUnderTest(
        sender,
        receiver.url,
        lambda: [(arrived.headers["webhook-id"], arrived.body) for arrived in receiver.received()],
        lambda: receiver.answer(Answer(status=500)),
    )


@pytest.fixture(params=["fake", "http"])
def under_test(request: pytest.FixtureRequest) -> Iterator[WebhooksUnderTest]:
    if request.param == "fake":
        yield fake()
        return
    with WebhookReceiver() as receiver:
        yield http(receiver)


def test_a_send_that_returns_reached_the_receiver_with_the_events_id_and_body(
    under_test: WebhooksUnderTest,
) -> None:
    under_test.sender.send(under_test.url, None, sample_event())
    assert under_test.received() == [(sample_event().id, sample_event().body())]


def test_a_receiver_that_does_not_take_it_makes_the_send_raise_and_again_is_the_same(
    under_test: WebhooksUnderTest,
) -> None:
    under_test.refuse_next()
    with pytest.raises(WebhookNotDelivered, match="500"):
        under_test.sender.send(under_test.url, None, sample_event())
    under_test.sender.send(under_test.url, None, sample_event())
    assert under_test.received() == [(sample_event().id, sample_event().body())] * 2

"""Where a deployment tells of jobs' ends is read from its settings: the default profile's webhook
from BUCKETSCRIBE_WEBHOOK_URL, each profile's own, the cloud's bus or topic; what cannot work is
refused when the functions start; nothing is built (or imported) where nothing is configured."""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator

import pytest
from pydantic import SecretStr, ValidationError

from bucketscribe.clouds.aws import CLOUD as AWS
from bucketscribe.clouds.huawei import CLOUD as HUAWEI
from bucketscribe.clouds.huawei.event_topic import SmnTopic
from bucketscribe.ports.secrets import MissingSecret
from bucketscribe.settings import Settings
from bucketscribe.webhooks.sender import HttpWebhookSender
from bucketscribe.wiring import checked_settings, environment_settings, profiles, webhook_sender
from tests.job_events import sample_event
from tests.profiles import profile

pytestmark = pytest.mark.unit

TWO_PROFILES = json.dumps(
    [
        {"name": "default", "prefix": ""},
        {"name": "calls", "prefix": "calls/", "webhook_url": "https://calls.example.com/hook"},
    ]
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("BUCKETSCRIBE_"):
            monkeypatch.delenv(name)
    environment_settings.cache_clear()
    yield
    environment_settings.cache_clear()


def test_the_webhook_url_setting_is_the_default_profiles_and_a_profiles_own_stays() -> None:
    settings = Settings(webhook_url="https://hooks.example.com/all", profiles=TWO_PROFILES)
    loaded = profiles(settings)
    assert [(p.name, p.webhook_url) for p in loaded.profiles] == [
        ("default", "https://hooks.example.com/all"),
        ("calls", "https://calls.example.com/hook"),
    ]
    assert [p.webhook_url for p in profiles(Settings(profiles=TWO_PROFILES)).profiles] == [
        None,
        "https://calls.example.com/hook",
    ]


@pytest.mark.parametrize(
    ("values", "words"),
    [
        (
            {
                "webhook_url": "https://hooks.example.com/x",
                "profiles": json.dumps([{"name": "all", "prefix": ""}]),
            },
            "no profile is called 'default'",
        ),
        ({"profiles": TWO_PROFILES}, "profile 'calls' has a webhook_url but no signing secret"),
        (
            {"webhook_url": "http://hooks.example.com/x", "webhook_secret_name": "s"},
            "webhooks go over HTTPS only",
        ),
    ],
)
def test_webhook_settings_that_cannot_work_are_refused_at_start(values: dict[str, str], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        checked_settings(Settings.model_validate(values), AWS)


def test_plain_http_is_taken_where_private_receivers_are_allowed() -> None:
    settings = Settings(
        webhook_url="http://127.0.0.1:9000/x",
        webhook_secret=SecretStr("whsec_AAAA"),
        webhook_allow_private=True,
    )
    assert checked_settings(settings, AWS) is settings


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://hooks.example.com/x", "https:// URL with a host"),
        ("https:///no-host", "https:// URL with a host"),
        ("https://user:pass@hooks.example.com/x", "must not carry a user name or password"),
    ],
)
def test_a_profiles_webhook_url_must_be_a_url_without_credentials(url: str, words: str) -> None:
    with pytest.raises(ValidationError, match=words):
        profile(webhook_url=url)


def test_no_sender_is_built_where_no_profile_has_a_webhook() -> None:
    assert webhook_sender(Settings(), _NoStore(), profiles(Settings())) is None
    settings = Settings(profiles=TWO_PROFILES, webhook_secret_name="s")
    assert isinstance(webhook_sender(settings, _NoStore(), profiles(settings)), HttpWebhookSender)


def test_the_bus_is_the_one_the_cloud_settings_name_and_none_when_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert AWS.event_bus() is None and HUAWEI.event_bus() is None
    monkeypatch.setenv("BUCKETSCRIBE_EVENT_BUS_NAME", "")
    assert AWS.event_bus() is None  # the deploy's eventBusName '' publishes nothing
    monkeypatch.setenv("BUCKETSCRIBE_EVENT_BUS_NAME", "jobs")
    assert AWS.event_bus() is not None
    monkeypatch.setenv(
        "BUCKETSCRIBE_SMN_TOPIC_URN", "urn:smn:cn-east-3:0123456789abcdef0123456789abcdef:jobs"
    )
    topic = HUAWEI.event_bus()
    assert isinstance(topic, SmnTopic)
    assert (topic._region, topic._project_id) == ("cn-east-3", "0123456789abcdef0123456789abcdef")
    monkeypatch.setenv("BUCKETSCRIBE_SMN_TOPIC_URN", "jobs-topic")
    assert any("is not a topic URN" in p for p in HUAWEI.settings_problems(Settings()))


def test_a_placeholder_in_the_signing_secret_is_never_signed_with() -> None:
    def no_network(address: tuple[str, int], timeout: float) -> socket.socket:
        raise AssertionError(f"nothing may be sent: dialled {address}")

    sender = HttpWebhookSender(_NoStore(), default_secret=SecretStr("set-me"), connect=no_network)
    with pytest.raises(MissingSecret, match="holds no whsec_"):
        sender.send("https://hooks.example.com/x", None, sample_event())
    unnamed = HttpWebhookSender(_NoStore(), default_secret_name="bucketscribe-dev-webhook-default")
    with pytest.raises(MissingSecret, match="not configured"):
        unnamed.send("https://hooks.example.com/x", None, sample_event())


class _NoStore:
    def get(self, name: str) -> str | None:
        return None


def test_the_webhook_settings_table_rows_exist_in_the_readme() -> None:
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    for name in (
        "BUCKETSCRIBE_WEBHOOK_URL",
        "BUCKETSCRIBE_WEBHOOK_SECRET",
        "BUCKETSCRIBE_WEBHOOK_SECRET_NAME",
        "BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE",
        "BUCKETSCRIBE_WEBHOOK_TIMEOUT_S",
        "BUCKETSCRIBE_EVENT_BUS_NAME",
        "BUCKETSCRIBE_SMN_TOPIC_URN",
    ):
        assert f"`{name}`" in readme, name

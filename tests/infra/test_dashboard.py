"""The on-call dashboard (infra/resources/dashboard.yml) as `serverless package` writes it into the
CloudFormation template (cfn-lint checks that template in test_serverless_package.py): a dashboard
that names a metric no function emits draws an empty graph forever, so every metric it names must
be one the code emits, and every log line it counts one the code logs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from bucketscribe.pipeline.submit import UploadOutcome
from tests.infra.aws_package import REPO, STAGE, Packaged

pytestmark = pytest.mark.infra

CODE = REPO / "shared" / "bucketscribe"
NAMESPACE = "bucketscribe"
# What the on-call person needs, as the issue lists it: each must have a widget.
NEEDED = {
    "uploads": "NotificationsReceived",
    "done": "JobsCompleted",
    "failed": "JobsFailed",
    "age of the oldest unfinished job": "OldestUnfinishedJobAge",
    "provider refusals": "UploadsDeferred",
    "callbacks ignored": "CallbacksIgnored",
    "webhook deliveries failing": "WebhookDeliveriesFailed",
}
# Emitted by the webhook delivery work, which lands beside this dashboard: the one name allowed in
# before its code is here. Remove it from this set once `count("WebhookDeliveriesFailed")` exists.
NOT_YET_EMITTED = {"WebhookDeliveriesFailed"}


def emitted_metrics() -> set[str]:
    """Every metric name the deployed code passes to ``count``/``measure`` (observability.py)."""
    names: set[str] = set()
    for path in CODE.rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        names |= set(re.findall(r"\b(?:count|measure)\(\s*\"(\w+)\"", source))
        if 'count(f"Uploads{result.outcome.value.title()}")' in source:
            names |= {f"Uploads{outcome.value.title()}" for outcome in UploadOutcome}
    return names


def logged_messages() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in CODE.rglob("*.py"))


def _dashboard_body(packaged: Packaged) -> dict[str, Any]:
    (dashboard,) = packaged.of_type("AWS::CloudWatch::Dashboard").values()
    assert dashboard["Properties"]["DashboardName"] == f"bucketscribe-{STAGE}"
    template, variables = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(variables) == {"Region", "Stage", "SubmitLogs", "CallbackLogs", "ReconcileLogs"}
    for log_variable, function in (
        ("SubmitLogs", "Submit"),
        ("CallbackLogs", "Callback"),
        ("ReconcileLogs", "Reconcile"),
    ):
        assert variables[log_variable] == {"Ref": f"{function}LogGroup"}, log_variable
    # What CloudFormation's Fn::Sub does, with stand-ins for the values it fills in.
    body = re.sub(r"\$\{(\w+)\}", lambda m: f"stand-in-{m.group(1)}", template)
    parsed: dict[str, Any] = json.loads(body)
    return parsed


def _metrics(body: dict[str, Any]) -> list[list[Any]]:
    return [
        metric
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for metric in widget["properties"]["metrics"]
    ]


def test_the_dashboard_names_only_metrics_the_functions_emit(packaged: Packaged) -> None:
    metrics = _metrics(_dashboard_body(packaged))
    named = {metric[1] for metric in metrics}
    for metric in metrics:
        # Powertools publishes every metric with the service as its one dimension.
        assert metric[0] == NAMESPACE and metric[2:4] == ["service", NAMESPACE], metric
    emitted = emitted_metrics()
    assert named - emitted <= NOT_YET_EMITTED, (
        f"not emitted by any code: {sorted(named - emitted - NOT_YET_EMITTED)}"
    )
    for need, name in NEEDED.items():
        assert name in named, f"no widget shows {need} ({name})"


def test_the_dashboard_counts_only_log_lines_the_functions_write(packaged: Packaged) -> None:
    body = _dashboard_body(packaged)
    queries = [w["properties"]["query"] for w in body["widgets"] if w["type"] == "log"]
    assert any("stats count(*) as failed by code" in query for query in queries)  # failed by code
    source = logged_messages()
    for query in queries:
        for message in re.findall(r"message = (?:'([^']+)'|\"([^\"]+)\")", query):
            text = message[0] or message[1]
            assert f'"{text}"' in source, f"no code logs {text!r}"
        # Each log widget reads the functions' own log groups, filled in by Fn::Sub.
        assert "SOURCE 'stand-in-SubmitLogs'" in query or "SOURCE 'stand-in-ReconcileLogs'" in query
    assert all("fields code" in query for query in queries)


def test_emitted_metric_names_are_read_from_the_code() -> None:
    # The scan above must see what it claims to: an empty or partial set would pass the checks above
    # for the wrong reason (or fail them for one).
    emitted = emitted_metrics()
    assert {
        "JobsCompleted",
        "JobsFailed",
        "CallbacksIgnored",
        "UploadsSubmitted",
        "UploadsDeferred",
    } <= emitted
    assert "OldestUnfinishedJobAge" in emitted  # the reconciler's, for "is anything stuck?"

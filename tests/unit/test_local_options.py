"""What `bucketscribe up` takes from the user's environment: their own timings win over the
stack's, and BUCKETSCRIBE_LOCAL_FAULTS carries storage errors as well as the emulators' faults; what
it does not take from there, the submit function's batching, is the deployed one."""

from __future__ import annotations

import json

import pytest
from bucketscribe_local.stack import (
    DEPLOYED_SUBMIT_BATCH_SIZE,
    DEPLOYED_SUBMIT_BATCHING_WINDOW_S,
    DEPLOYED_SUBMIT_MAX_CONCURRENCY,
    LocalStackOptions,
    options_from_environment,
)

from tests.infra.deploy_sources import serverless

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("BUCKETSCRIBE_"):
            monkeypatch.delenv(name)


def test_the_users_claim_lease_and_evidence_wait_are_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUCKETSCRIBE_CLAIM_LEASE_S", "7")
    monkeypatch.setenv("BUCKETSCRIBE_EVIDENCE_WAIT_S", "90")
    options = options_from_environment()
    assert (options.claim_lease_s, options.evidence_wait_s) == (7, 90)


def test_without_them_the_stack_keeps_its_own() -> None:
    options = options_from_environment()
    assert options.claim_lease_s == 20 and options.evidence_wait_s == 60


def test_local_faults_carry_storage_errors_beside_the_emulator_faults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "BUCKETSCRIBE_LOCAL_FAULTS",
        json.dumps(
            {
                "drop_callback_rate": 1,
                "storage_errors": [{"op": "head", "key_contains": "sealed", "status": 400}],
            }
        ),
    )
    options = options_from_environment()
    assert options.faults.drop_callback_rate == 1
    (rule,) = options.pipeline_faults.storage_errors
    assert (rule.op, rule.key_contains, rule.status) == ("head", "sealed", 400)


@pytest.mark.parametrize(
    "plan",
    ['{"storage_errors": [{"op": "list", "key_contains": "x"}]}', "not json", "[1]", '{"no_such_knob": 1}'],
)
def test_a_bad_fault_plan_is_refused_naming_the_setting(monkeypatch: pytest.MonkeyPatch, plan: str) -> None:
    monkeypatch.setenv("BUCKETSCRIBE_LOCAL_FAULTS", plan)
    with pytest.raises(ValueError, match="BUCKETSCRIBE_LOCAL_FAULTS is not a fault plan"):
        options_from_environment()


def test_the_stack_batches_uploads_as_the_deployed_submit_function_does() -> None:
    deployed = serverless()
    (source,) = [event["sqs"] for event in deployed.function("submit")["events"] if "sqs" in event]
    batch_size = int(deployed.resolve_param(source["batchSize"]))
    window_s = float(deployed.resolve_param(str(source["maximumBatchingWindow"])))
    assert (batch_size, window_s) == (
        deployed.params["submitBatchSize"],
        deployed.params["submitBatchingWindow"],
    )
    assert (batch_size, window_s) == (DEPLOYED_SUBMIT_BATCH_SIZE, DEPLOYED_SUBMIT_BATCHING_WINDOW_S)
    concurrency = int(deployed.resolve_param(str(source["maximumConcurrency"])))
    assert concurrency == DEPLOYED_SUBMIT_MAX_CONCURRENCY
    # The stack as `bucketscribe up` starts it, and as a bench or test makes it without saying.
    for options in (options_from_environment(), LocalStackOptions()):
        assert (options.batch_size, options.batching_window_s) == (batch_size, window_s)
        assert options.submit_concurrency == concurrency


def test_the_default_profiles_webhook_is_taken_from_the_users_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert (options_from_environment().webhook_url, options_from_environment().webhook_secret) == (None, None)
    monkeypatch.setenv("BUCKETSCRIBE_WEBHOOK_URL", "http://127.0.0.1:9000/hooks")
    monkeypatch.setenv("BUCKETSCRIBE_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    options = options_from_environment()
    assert options.webhook_url == "http://127.0.0.1:9000/hooks"
    assert options.webhook_secret == "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

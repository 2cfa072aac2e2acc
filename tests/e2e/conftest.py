from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import pytest
from bucketscribe_local.aws_resources import LocalAwsNames
from bucketscribe_local.stack import LocalStack, LocalStackOptions


def stack_options(log_dir: Path, cloud: Literal["aws", "huawei"] = "aws") -> LocalStackOptions:
    """The local stack with the instant engine (pipeline behaviour, not recognition quality).

    The bucket notifies about *every* key, the riskiest set-up: our own outputs then reach
    the submit function and must be recognised and skipped.
    """
    profiles = [
        {"name": "default", "prefix": ""},
        {"name": "dashscope", "prefix": "ds/", "provider": "dashscope"},
    ]
    # Throttling backoff in tens of milliseconds, not seconds, to keep the suite quick.
    os.environ["BUCKETSCRIBE_DASHSCOPE_THROTTLE_BACKOFF_S"] = "0.02"
    return LocalStackOptions(
        instant=True,
        profiles_json=json.dumps(profiles),
        reconcile_interval_s=0.5,
        first_check_after_s=1,
        max_check_interval_s=2,
        names=LocalAwsNames(notification_prefix="", visibility_timeout_s=30),
        claim_lease_s=20,
        # One upload at a time, handed over at once: these tests check what happens to uploads, and
        # the deployed batching window (the stack's default) would add its 1 s to each. Tests of
        # batching set their own (``stack.set_batching``) and come back to this.
        batch_size=10,
        batching_window_s=0.0,
        log_file=log_dir / "functions.log",
        metrics=True,
        cloud=cloud,
    )


# Module scope: one stack per test module at a time, because a stack's settings are the process's
# environment (the functions read them as a deployed function would). A module that needs both
# clouds asks for ``both_clouds``, whose two stacks run one after the other.
@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(stack_options(tmp_path_factory.mktemp("stack"))) as running:
        yield running


@pytest.fixture(scope="module", params=["aws", "huawei"])
def both_clouds(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalStack]:
    """The stack as each cloud runs the functions: AWS (S3 → SQS → Lambda events) and Huawei Cloud
    (OBS SDK, OBS trigger → FunctionGraph events, API Gateway events, a timer)."""
    with LocalStack(stack_options(tmp_path_factory.mktemp(request.param), request.param)) as running:
        yield running

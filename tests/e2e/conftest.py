from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from bucketscribe.local.aws_resources import LocalAwsNames
from bucketscribe.local.stack import LocalStack, LocalStackOptions


@pytest.fixture(scope="package")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
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
    options = LocalStackOptions(
        instant=True,
        profiles_json=json.dumps(profiles),
        reconcile_interval_s=0.5,
        first_check_after_s=1,
        max_check_interval_s=2,
        names=LocalAwsNames(notification_prefix="", visibility_timeout_s=30),
        claim_lease_s=20,
        log_file=tmp_path_factory.mktemp("stack") / "functions.log",
        metrics=True,
    )
    with LocalStack(options) as running:
        yield running

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Set before any Powertools logger is created, so child loggers share the service name.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bucketscribe")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bucketscribe")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Never let a test reach a real cloud account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@pytest.fixture(autouse=True)
def _no_agency_credentials_from_an_earlier_test() -> Iterator[None]:
    """The FunctionGraph entry points remember their context's agency key process-wide (as one
    function instance does); a test that ran them must not hand that key to the next test."""
    from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS

    yield
    AGENCY_CREDENTIALS.forget()

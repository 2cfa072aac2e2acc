"""FunctionGraph's context object, adapted once to what the shared code reads.

FunctionGraph hands every invocation a context with getter methods (``getRequestID()``,
``getRemainingTimeInMilliSeconds()``, ``getSecurityAccessKey()``, ...). The use cases need the
time left; Powertools' logger reads the function's name, memory and request id as a Lambda
context has them; the OBS adapter and the CSMS store sign with the agency's temporary key, which
FunctionGraph passes only here. ``functiongraph_handler`` does all three for an entry point.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from aws_lambda_powertools.utilities.typing import LambdaContext

from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS, HuaweiCredentials
from bucketscribe.observability import logger, metrics

Result = TypeVar("Result")


class FunctionGraphContext(Protocol):
    """The part of FunctionGraph's Python context this project uses (FunctionGraph developer
    guide, "Context methods")."""

    def getRequestID(self) -> str: ...

    def getRemainingTimeInMilliSeconds(self) -> int: ...

    def getFunctionName(self) -> str: ...

    def getVersion(self) -> str: ...

    def getMemorySize(self) -> int | str: ...

    def getSecurityAccessKey(self) -> str: ...

    def getSecuritySecretKey(self) -> str: ...

    def getSecurityToken(self) -> str: ...


class InvocationContext(LambdaContext):
    """A FunctionGraph context seen as the Lambda context the shared code and Powertools read."""

    def __init__(self, source: FunctionGraphContext) -> None:
        self._source = source

    @property
    def function_name(self) -> str:
        return self._source.getFunctionName()

    @property
    def function_version(self) -> str:
        return self._source.getVersion()

    @property
    def invoked_function_arn(self) -> str:
        # FunctionGraph has no ARN to offer here; its name and version identify the function.
        return f"{self.function_name}:{self.function_version}"

    @property
    def memory_limit_in_mb(self) -> int:
        return int(self._source.getMemorySize())

    @property
    def aws_request_id(self) -> str:
        return self._source.getRequestID()

    @property
    def log_group_name(self) -> str:
        return ""

    @property
    def log_stream_name(self) -> str:
        return ""

    # The base class declares it static; a FunctionGraph context answers per invocation.
    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return int(self._source.getRemainingTimeInMilliSeconds())


def remember_agency_key(context: FunctionGraphContext) -> None:
    """Hand this invocation's agency key to the adapters that sign with it (it is renewed while
    an instance lives). A function without an agency gets no key: the environment's then serves."""
    if context.getSecurityAccessKey():
        AGENCY_CREDENTIALS.remember(HuaweiCredentials.from_context(context))


def functiongraph_handler(
    handler: Callable[[dict[str, Any], LambdaContext], Result],
) -> Callable[[dict[str, Any], FunctionGraphContext], Result]:
    """An entry point FunctionGraph can call: the agency key remembered, the context adapted,
    logs and metrics as on every other entry point."""
    observed = cast(
        Callable[[dict[str, Any], LambdaContext], Result],
        logger.inject_lambda_context(clear_state=True)(metrics.log_metrics(handler)),
    )

    @functools.wraps(handler)
    def invoke(event: dict[str, Any], context: FunctionGraphContext) -> Result:
        remember_agency_key(context)
        return observed(event, InvocationContext(context))

    return invoke

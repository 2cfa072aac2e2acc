"""The local stack's callback endpoint runs invocations side by side as the cloud does, not as many
as asyncio's default executor has threads (six on two cores): a callback that waits (a push waiting
for its task's record) must not queue the others behind it. Both clouds' bridges."""

from __future__ import annotations

import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from aiohttp import web
from bucketscribe_local.function_instances import CALLBACK_INVOCATIONS_AT_ONCE
from bucketscribe_local.functiongraph_bridge import apig_trigger_app
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.lambda_bridge import api_gateway_app

pytestmark = pytest.mark.integration

DEADLINE_S = 30.0
# More than asyncio's default executor takes on any machine of the README's class.
AT_ONCE = 12


def gathering(barrier: threading.Barrier) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A handler that returns only once ``barrier``'s parties are all inside a handler at once."""

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return {"statusCode": 503, "body": "not all at once"}
        return {"statusCode": 200, "body": "together"}

    return handler


def lambda_app(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> web.Application:
    return api_gateway_app(handler, [("POST", "/callbacks/dashscope")])


def functiongraph_app(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> web.Application:
    return apig_trigger_app(lambda: handler, [("POST", "/callbacks/dashscope")], lambda: None)  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize("make_app", [lambda_app, functiongraph_app], ids=["aws", "huawei"])
def test_a_dozen_callbacks_run_at_once(
    make_app: Callable[[Callable[[dict[str, Any], Any], dict[str, Any]]], web.Application],
) -> None:
    assert CALLBACK_INVOCATIONS_AT_ONCE >= AT_ONCE
    barrier = threading.Barrier(AT_ONCE, timeout=DEADLINE_S)
    with BackgroundHttpServer(make_app(gathering(barrier))) as server:

        def post(_: int) -> int:
            request = urllib.request.Request(f"{server.url}/callbacks/dashscope", data=b"{}", method="POST")
            try:
                with urllib.request.urlopen(request, timeout=DEADLINE_S + 5) as answer:
                    return int(answer.status)
            except urllib.error.HTTPError as refused:
                return refused.code

        with ThreadPoolExecutor(max_workers=AT_ONCE) as callers:
            statuses = list(callers.map(post, range(AT_ONCE)))
    assert statuses == [200] * AT_ONCE

"""The HTTP API's routing, and API Gateway's proxy events read into its requests: one segment per
path parameter, headers in any case, a base64 body decoded when read, 404 for what is not routed."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bucketscribe.clouds.aws.http import proxy_response, request_from_proxy_event
from bucketscribe.entrypoints.http.routing import Reply, Request, Router

pytestmark = pytest.mark.unit


class Context:
    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def event(method: str, path: str, **extra: Any) -> dict[str, Any]:
    return {"httpMethod": method, "path": path, **extra}


@pytest.fixture
def router() -> Router:
    router = Router()

    @router.route("POST", "/callbacks/<provider_name>/<job_id>")
    def callback(request: Request) -> Reply:
        return Reply.json(200, {"route": "callback", **request.params, "body": request.body})

    @router.route("POST", "/callbacks/<provider_name>")
    def push(request: Request) -> Reply:
        return Reply.json(200, {"route": "push", "token": request.header("X-Push-Token")})

    @router.route("GET", "/jobs")
    def jobs(request: Request) -> Reply:
        return Reply.json(200, {"route": "jobs", "key": request.query.get("key")})

    return router


def answer(router: Router, proxy_event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """What API Gateway gets back for ``proxy_event``, as the AWS callback function answers it."""
    response = proxy_response(router.resolve(request_from_proxy_event(proxy_event, Context())))
    assert response["headers"] == {"Content-Type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_a_path_parameter_is_one_whole_segment(router: Router) -> None:
    assert answer(router, event("POST", "/callbacks/sis/job-1", body="{}")) == (
        200,
        {"route": "callback", "provider_name": "sis", "job_id": "job-1", "body": "{}"},
    )
    assert answer(router, event("POST", "/callbacks/sis"))[1]["route"] == "push"
    assert answer(router, event("POST", "/callbacks/sis/job-1/extra"))[0] == 404


@pytest.mark.parametrize(
    "proxy_event",
    [
        event("GET", "/callbacks/sis/job-1"),  # a routed path, another method
        event("POST", "/nowhere"),
        event("POST", "/callbacks/"),
        {},  # not a proxy event at all
    ],
)
def test_what_is_not_routed_is_a_404_that_names_no_route(router: Router, proxy_event: dict[str, Any]) -> None:
    assert answer(router, proxy_event) == (404, {"message": "Not found"})


def test_a_body_no_route_reads_is_never_decoded(router: Router) -> None:
    def unreadable() -> str:
        raise AssertionError("the body was read")

    request = Request("POST", "/callbacks/dashscope", {}, {}, unreadable, Context())
    assert router.resolve(request).status == 200


def test_headers_are_read_in_any_case_and_from_either_shape(router: Router) -> None:
    single = event("POST", "/callbacks/dashscope", headers={"x-push-token": "a"})
    multi = event("POST", "/callbacks/dashscope", multiValueHeaders={"X-PUSH-TOKEN": ["old", "b"]})
    assert answer(router, single)[1]["token"] == "a"
    assert answer(router, multi)[1]["token"] == "b"
    assert answer(router, event("POST", "/callbacks/dashscope"))[1]["token"] is None


def test_a_base64_body_is_decoded_and_a_false_one_reads_as_empty(router: Router) -> None:
    encoded = base64.b64encode('{"task": "ü"}'.encode()).decode()
    request = event("POST", "/callbacks/sis/j", body=encoded, isBase64Encoded=True)
    assert answer(router, request)[1]["body"] == '{"task": "ü"}'
    broken = event("POST", "/callbacks/sis/j", body="not base64!", isBase64Encoded=True)
    assert answer(router, broken)[1]["body"] == ""


def test_query_parameters_reach_the_route(router: Router) -> None:
    request = event("GET", "/jobs", queryStringParameters={"bucket": "b", "key": "incoming/a b.wav"})
    assert answer(router, request)[1] == {"route": "jobs", "key": "incoming/a b.wav"}
    assert answer(router, event("GET", "/jobs", queryStringParameters=None))[1]["key"] is None

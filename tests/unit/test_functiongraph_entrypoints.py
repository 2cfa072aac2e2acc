"""The FunctionGraph entry points, given the events and the context FunctionGraph gives them.

The use cases run on the in-memory ports; only the entry points' own work is looked at here: the
OBS trigger's event shapes, failing the invocation when an upload must come again, the APIG
trigger's base64 bodies and answer shape, the timer, and the agency key handed to the adapters.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote_plus, urlsplit

import pytest
from bucketscribe_local.functiongraph_bridge import LocalFunctionGraphContext
from pydantic import SecretStr

from bucketscribe.clouds.huawei.credentials import AGENCY_CREDENTIALS, HuaweiCredentials
from bucketscribe.clouds.huawei.functiongraph import callback, reconcile, submit
from bucketscribe.clouds.huawei.functiongraph.apig import apig_response, parse_request
from bucketscribe.clouds.huawei.functiongraph.context import InvocationContext
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.notification import EventShapeError
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.entrypoints.http.routing import Reply
from bucketscribe.entrypoints.uploads import SubmitLater
from bucketscribe.pipeline.context import PipelinePorts
from bucketscribe.settings import Settings
from tests.audio import tone_wav
from tests.fakes import (
    FakeProvider,
    InMemoryDeadLetters,
    InMemoryJobStore,
    InMemoryStorage,
    claim_from_callback_url,
)

pytestmark = pytest.mark.unit

AGENCY = HuaweiCredentials(ak="agency-ak", sk=SecretStr("agency-sk"), security_token=SecretStr("token"))
STATUS_TOKEN = "status-token-for-tests"


def context(function: str = "submit", timeout_s: float = 300) -> LocalFunctionGraphContext:
    return LocalFunctionGraphContext(f"bucketscribe-{function}", AGENCY, timeout_s=timeout_s)


@dataclass
class Wired:
    """The in-memory ports the entry points were given, with their fakes' own types."""

    ports: PipelinePorts
    storage: InMemoryStorage
    jobs: InMemoryJobStore


@pytest.fixture
def wired(monkeypatch: pytest.MonkeyPatch, ports: PipelinePorts) -> Wired:
    """The entry points' composition root answers with the in-memory ports."""
    settings = Settings(status_api_token=SecretStr(STATUS_TOKEN))
    for module in (
        "bucketscribe.clouds.huawei.functiongraph.submit",
        "bucketscribe.entrypoints.reconcile",
        "bucketscribe.entrypoints.http.callbacks",
        "bucketscribe.entrypoints.http.job_status",
        "bucketscribe.entrypoints.http.pushes",
    ):
        monkeypatch.setattr(f"{module}.environment_ports", lambda: ports)
    for module in (
        "bucketscribe.entrypoints.reconcile",
        "bucketscribe.entrypoints.http.job_status",
        "bucketscribe.entrypoints.http.pushes",
        "bucketscribe.entrypoints.http.replies",
    ):
        monkeypatch.setattr(f"{module}.environment_settings", lambda: settings)
    monkeypatch.setattr(AGENCY_CREDENTIALS, "_remembered", None)
    assert isinstance(ports.storage, InMemoryStorage) and isinstance(ports.jobs, InMemoryJobStore)
    return Wired(ports, ports.storage, ports.jobs)


def s3_style(key: str, bucket: str = "recordings") -> dict[str, Any]:
    """A record as FunctionGraph's documented OBS sample event has it (S3 field names)."""
    return {
        "eventVersion": "2.0",
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Post",
        "s3": {
            "s3SchemaVersion": "1.0",
            # No size or ETag: the bucket is asked (a record that carries them is trusted).
            "object": {"key": quote_plus(key, safe="/")},
            "bucket": {"name": bucket, "ownerIdentity": {"PrincipalId": "owner"}},
        },
    }


def obs_style(key: str) -> dict[str, Any]:
    entity = {"bucket": {"name": "recordings"}, "object": {"key": key}}
    return {"eventName": "ObjectCreated:Put", "obs": entity}


# -- the OBS trigger -------------------------------------------------------------------------------


def test_each_upload_an_obs_event_names_is_submitted_in_either_record_shape(
    wired: Wired, provider: FakeProvider
) -> None:
    keys = ["incoming/a b+c/ünï côde.wav", "incoming/obs-shaped.wav"]
    for key in keys:
        wired.storage.add("recordings", key, tone_wav(1))
    answer = submit.handler({"Records": [s3_style(keys[0]), obs_style(keys[1])]}, context())
    assert answer == {"uploads": dict.fromkeys(keys, "SUBMITTED")}
    jobs = {job.source.key: job for job in wired.jobs.jobs.values()}
    assert sorted(jobs) == sorted(keys) and {job.state for job in jobs.values()} == {JobState.SUBMITTED}
    assert len(provider.submissions) == 2


def test_the_invocation_hands_the_agency_key_to_the_adapters(wired: Wired) -> None:
    assert AGENCY_CREDENTIALS._remembered is None
    submit.handler({"Records": []}, context())
    assert AGENCY_CREDENTIALS.current() == AGENCY


def test_a_record_that_names_no_object_is_skipped_and_the_others_go_on(
    wired: Wired, provider: FakeProvider
) -> None:
    wired.storage.add("recordings", "incoming/good.wav", tone_wav(1))
    nameless = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": ""}, "object": {"key": "x.wav"}}}
    answer = submit.handler({"Records": [nameless, s3_style("incoming/good.wav")]}, context())
    assert answer == {"uploads": {"incoming/good.wav": "SUBMITTED"}} and len(provider.submissions) == 1


def test_an_upload_that_got_nothing_durable_fails_the_invocation_so_functiongraph_retries(
    wired: Wired, monkeypatch: pytest.MonkeyPatch
) -> None:
    wired.storage.add("recordings", "incoming/a.wav", tone_wav(1))

    def store_down(job: Job) -> bool:
        raise ConnectionError("job store unavailable")

    monkeypatch.setattr(wired.jobs, "create", store_down)
    with pytest.raises(SubmitLater, match=r"incoming/a\.wav: ConnectionError"):
        submit.handler({"Records": [s3_style("incoming/a.wav")]}, context())


def test_with_too_little_time_left_nothing_is_accepted_and_the_invocation_fails(
    wired: Wired, provider: FakeProvider
) -> None:
    wired.storage.add("recordings", "incoming/late.wav", tone_wav(1))
    with pytest.raises(SubmitLater, match="out of time"):
        submit.handler({"Records": [s3_style("incoming/late.wav")]}, context(timeout_s=30))
    assert wired.jobs.jobs == {} and provider.submissions == []


@pytest.mark.parametrize("event", [{"Hello": "world"}, {"Records": "not a list"}, ["not", "an", "object"]])
def test_an_event_that_is_no_obs_event_fails_the_invocation(wired: Wired, event: Any) -> None:
    with pytest.raises(EventShapeError):
        submit.handler(event, context())


# -- the APIG trigger ------------------------------------------------------------------------------


def apig_event(
    method: str,
    url: str,
    body: bytes = b"",
    headers: dict[str, str] | None = None,
    **path_parameters: str,
) -> dict[str, Any]:
    """What API Gateway (Huawei) sends the function: query parsed, body base64 (its default)."""
    parts = urlsplit(url)
    query = dict(pair.split("=", 1) for pair in parts.query.split("&") if pair)
    return {
        "httpMethod": method,
        "path": parts.path,
        "headers": {"host": "cb.example.com", "x-real-ip": "203.0.113.9", **(headers or {})},
        "queryStringParameters": query,
        "pathParameters": path_parameters,
        "requestContext": {"requestId": "r-1", "apiId": "api", "stage": "RELEASE"},
        "body": base64.b64encode(body).decode(),
        "isBase64Encoded": True,
    }


def test_a_sis_callback_with_a_base64_body_finishes_the_job_and_answers_in_the_apig_shape(
    wired: Wired, provider: FakeProvider
) -> None:
    from bucketscribe.domain.transcript import Segment, Transcript

    wired.storage.add("recordings", "incoming/call.wav", tone_wav(1))
    submit.handler({"Records": [s3_style("incoming/call.wav")]}, context())
    (((item,), _),) = provider.submissions
    (job,) = wired.jobs.jobs.values()
    assert job.provider_task_id is not None
    provider.finish(
        job.provider_task_id,
        Transcript(provider="sis", duration_ms=900, segments=[Segment(start_ms=0, end_ms=900, text="hello")]),
    )
    assert item.callback_url is not None
    job_id, _ = claim_from_callback_url(item.callback_url)
    body = json.dumps({"job_id": job.provider_task_id, "status": "FINISHED"}).encode()
    # The gateway's path is the route's: the callback base URL's own path is the gateway's stage.
    route = item.callback_url.removeprefix(wired.ports.callback_base_url)
    event = apig_event("POST", f"https://cb.example.com{route}", body, job_id=job_id)
    answer = callback.handler(event, context("callback", 28))
    assert answer["statusCode"] == 200 and answer["isBase64Encoded"] is False
    assert answer["headers"]["Content-Type"] == "application/json"
    assert json.loads(answer["body"]) == {"result": "DONE"}
    done = wired.jobs.get(job.id)
    assert done is not None and done.state is JobState.DONE


def test_a_forged_callback_is_refused_before_its_body_is_read(wired: Wired, provider: FakeProvider) -> None:
    url = f"https://cb.example.com/callbacks/sis/{'f' * 32}?attempt=1&exp=4102444800&token={'0' * 64}"
    answer = callback.handler(apig_event("POST", url, b"{not json", job_id="f" * 32), context("callback"))
    assert (answer["statusCode"], json.loads(answer["body"])) == (404, {"message": "Not found"})
    assert provider.fetches == []


def test_the_status_route_reads_the_bearer_token_from_lower_case_headers(wired: Wired) -> None:
    wired.storage.add("recordings", "incoming/s.wav", tone_wav(1))
    submit.handler({"Records": [s3_style("incoming/s.wav")]}, context())
    (job,) = wired.jobs.jobs.values()
    url = f"https://cb.example.com/jobs/{job.id}"
    refused = callback.handler(apig_event("GET", url, job_id=job.id), context("callback"))
    assert refused["statusCode"] == 401
    bearer = {"authorization": f"Bearer {STATUS_TOKEN}"}
    answer = callback.handler(apig_event("GET", url, headers=bearer, job_id=job.id), context("callback"))
    assert answer["statusCode"] == 200 and json.loads(answer["body"])["state"] == "SUBMITTED"
    lookup = "https://cb.example.com/jobs?bucket=recordings&key=incoming/s.wav"
    by_key = apig_event("GET", lookup, headers=bearer)
    assert callback.handler(by_key, context("callback"))["statusCode"] == 200


def test_a_body_marked_base64_that_is_not_is_a_bad_request(wired: Wired) -> None:
    event = apig_event("POST", "https://cb.example.com/callbacks/dashscope")
    event["body"] = "this is not base64!"
    answer = callback.handler(event, context("callback"))
    assert (answer["statusCode"], json.loads(answer["body"])) == (400, {"message": "Bad request"})


def test_an_event_that_is_no_apig_event_is_a_bad_request(wired: Wired) -> None:
    answer = callback.handler({"trigger_type": "TIMER"}, context("callback"))
    assert answer["statusCode"] == 400


class NoTime:
    def get_remaining_time_in_millis(self) -> int:
        return 10_000


def test_the_base64_body_reaches_the_routes_as_the_text_that_was_sent() -> None:
    sent = json.dumps({"job_id": "ünï", "status": "FINISHED"}).encode("utf-8")
    event = apig_event("POST", "https://cb.example.com/callbacks/sis/x", sent)
    request = parse_request(event).to_request(NoTime())
    assert request.body == sent.decode("utf-8")
    assert (request.method, request.path) == ("POST", "/callbacks/sis/x")


def test_plain_bodies_repeated_parameters_and_absent_maps_convert_as_api_gateway_means_them() -> None:
    request = parse_request(
        {
            "httpMethod": "post",
            "path": "/callbacks/dashscope",
            "headers": {"X-Token": ["a", "b"]},
            "queryStringParameters": {"k": ["1", "2"]},
            "pathParameters": None,
            "body": '{"plain": true}',
            "isBase64Encoded": False,
        }
    ).to_request(NoTime())
    assert request.method == "POST" and request.body == '{"plain": true}'
    # A repeated header or parameter: its last value, as API Gateway's single-value maps hold it.
    assert request.header("x-token") == "b" and request.query == {"k": "2"}


def test_a_reply_goes_back_in_the_shape_api_gateway_takes() -> None:
    assert apig_response(Reply(204, "")) == {
        "statusCode": 204,
        "headers": {"Content-Type": "application/json"},
        "body": "",
        "isBase64Encoded": False,
    }


# -- the timer, and the context itself ---------------------------------------------------------


def test_the_timer_reconciles_and_settles_failure_records_like_dead_letters(
    wired: Wired, provider: FakeProvider
) -> None:
    wired.storage.add("recordings", "incoming/gave-up.wav", tone_wav(1))
    event = json.dumps({"Records": [s3_style("incoming/gave-up.wav")]})
    wired.ports.dead_letters = InMemoryDeadLetters([event])
    timer = {"version": "v1.0", "trigger_type": "TIMER", "trigger_name": "every-5-minutes", "user_event": ""}
    report = reconcile.handler(timer, context("reconcile"))
    assert report["dead_letters"] == 1 and wired.ports.dead_letters.deleted == ["m0"]
    (job,) = wired.jobs.jobs.values()
    assert job.state is JobState.SUBMITTED and job.source == ObjectRef(
        bucket="recordings", key="incoming/gave-up.wav", size=job.source.size, etag=job.source.etag
    )


def test_the_context_is_seen_as_the_lambda_context_the_shared_code_reads() -> None:
    source = context("callback", timeout_s=28)
    seen = InvocationContext(source)
    assert seen.function_name == "bucketscribe-callback" and seen.aws_request_id == source.request_id
    assert seen.memory_limit_in_mb == 1024 and seen.invoked_function_arn == "bucketscribe-callback:latest"
    assert 0 < seen.get_remaining_time_in_millis() <= 28_000


def test_a_function_without_an_agency_leaves_the_environment_key_in_place(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bucketscribe.clouds.huawei.functiongraph.context import remember_agency_key

    monkeypatch.setattr(AGENCY_CREDENTIALS, "_remembered", None)
    no_agency = LocalFunctionGraphContext("f", HuaweiCredentials(ak="", sk=SecretStr("")))
    remember_agency_key(no_agency)
    assert AGENCY_CREDENTIALS._remembered is None


def test_a_push_for_a_provider_this_deployment_lacks_is_not_found(wired: Wired) -> None:
    event = apig_event("POST", "https://cb.example.com/callbacks/dashscope", b"{}")
    answer = callback.handler(event, context("callback"))
    assert (answer["statusCode"], json.loads(answer["body"])) == (404, {"message": "Not found"})

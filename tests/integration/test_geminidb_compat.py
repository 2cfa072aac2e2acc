"""Every request the DynamoDB job store sends stays inside what GeminiDB's DynamoDB API supports.

The adapter runs against moto server (the real wire, as in tests/contracts/test_job_store.py) while a
botocore hook (``before-parameter-build``, so after any ``provide-client-params`` rewriting)
records each operation and its parameters as they go to serialisation; every record then goes
through ``tests.geminidb.geminidb_violations``. The adapter is driven through
every public method it has, with arguments chosen from each parameter's type, so a method added
or changed later is covered without editing this file (or fails here, saying what it needs).
"""

from __future__ import annotations

import copy
import importlib.util
import inspect
import types
import typing
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from bucketscribe.clouds.aws.job_store import DynamoJobStore, create_jobs_table, jobs_table_definition
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState
from bucketscribe.domain.upload import ObjectRef
from tests.geminidb import geminidb_undocumented, geminidb_violations

pytestmark = pytest.mark.integration

TABLE = "bucketscribe-jobs"
UPLOAD_KEY = "incoming/a b+c/ünï côde.wav"


@dataclass
class Recorder:
    """The (operation, parameters) of every DynamoDB call a client makes, as sent."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, copy.deepcopy(params)))


def recorded_client(endpoint: str) -> tuple[Any, Recorder]:
    """A DynamoDB client on moto whose every request from now on is recorded."""
    db = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    recorder = Recorder()
    db.meta.events.register("before-parameter-build.dynamodb.*", recorder)
    return db, recorder


@pytest.fixture
def recorded(aws: str) -> Iterator[tuple[DynamoJobStore, Recorder]]:
    db, recorder = recorded_client(aws)
    create_jobs_table(db, TABLE)
    recorder.calls.clear()  # the table set-up is not the adapter's
    yield DynamoJobStore(TABLE, db), recorder


def upload_job(key: str = UPLOAD_KEY) -> Job:
    return Job.for_upload(
        ObjectRef(bucket="recordings", key=key, etag="e1"),
        profile="default",
        provider="sis",
        model=None,
        now=utc_now(),
    )


class PlausibleArguments:
    """An argument for each parameter of a job-store method, chosen by its type (and, for plain
    strings, its name): enough for the method to send the requests it exists to send."""

    def __init__(self, stored: Job, now: datetime) -> None:
        self.stored = stored
        self.now = now
        self.strings = {
            "job_id": stored.id,
            "provider": "dashscope",
            "task_id": "task-1",
            "bucket": stored.source.bucket,
            "key": stored.source.key,
            "prefix": "incoming/",
            "key_prefix": "recordings/incoming/",
            "name": "reconciler",
            "owner": "run-1",
        }

    def for_method(self, name: str, method: Callable[..., Any]) -> dict[str, Any]:
        hints = typing.get_type_hints(method)
        return {
            parameter: self.value(name, parameter, hints[parameter])
            for parameter in inspect.signature(method).parameters
            if parameter != "self"
        }

    def value(self, method: str, parameter: str, hint: Any) -> Any:
        origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if origin in (types.UnionType, typing.Union):
            hint = next(a for a in arguments if a is not type(None))
            origin, arguments = typing.get_origin(hint), typing.get_args(hint)
        if hint is Job:
            return upload_job(f"incoming/new-{method}.wav") if method == "create" else self.stored
        if hint is datetime:
            return self.now
        if hint is timedelta:
            return timedelta(minutes=5)
        if hint is JobState:
            return JobState.ACCEPTED
        if hint is int:
            return 10
        if hint is bool:
            return True
        if hint is str and parameter in self.strings:
            return self.strings[parameter]
        if origin is not None and issubclass(origin, Iterable) and arguments == (JobState,):
            return [state for state in JobState if not state.is_final]
        if origin is dict and arguments == (str, str):
            return {self.stored.id: self.stored.source.key}
        pytest.fail(f"no plausible argument for {method}({parameter}: {hint}): teach PlausibleArguments")


def public_methods(store: DynamoJobStore) -> list[tuple[str, Callable[..., Any]]]:
    methods = [
        (name, getattr(store, name)) for name, _ in inspect.getmembers(type(store), inspect.isfunction)
    ]
    public = [(name, method) for name, method in methods if not name.startswith("_")]
    # create first, so the other methods find a stored job.
    return sorted(public, key=lambda item: (item[0] != "create", item[0]))


def drive_every_method(store: DynamoJobStore, recorder: Recorder) -> dict[str, list[str]]:
    """Call each public method once; the operations each one sent, by method."""
    stored = upload_job()
    assert store.create(stored) is True
    arguments = PlausibleArguments(stored, utc_now() + timedelta(days=1))
    sent: dict[str, list[str]] = {}
    for name, method in public_methods(store):
        before = len(recorder.calls)
        method(**arguments.for_method(name, method))
        sent[name] = [operation for operation, _ in recorder.calls[before:]]
    return sent


def test_every_public_method_sends_only_what_geminidb_supports(
    recorded: tuple[DynamoJobStore, Recorder],
) -> None:
    store, recorder = recorded
    sent = drive_every_method(store, recorder)
    silent = [name for name, operations in sent.items() if not operations]
    assert silent == [], f"methods that sent no request, so nothing was checked: {silent}"
    violations = [
        f"{operation}: {problem}"
        for operation, params in recorder.calls
        for problem in geminidb_violations(operation, params)
    ]
    assert violations == [], "\n".join(violations)
    print(f"checked {len(recorder.calls)} requests from {sorted(sent)}")


def test_the_adapter_avoids_condition_keywords_the_page_does_not_document(
    recorded: tuple[DynamoJobStore, Recorder],
) -> None:
    store, recorder = recorded
    drive_every_method(store, recorder)
    undocumented = sorted(
        {found for operation, params in recorder.calls for found in geminidb_undocumented(operation, params)}
    )
    assert undocumented == []


def load_table_script() -> types.ModuleType:
    path = Path(__file__).resolve().parents[2] / "infra" / "huawei" / "create_jobs_table.py"
    spec = importlib.util.spec_from_file_location("create_jobs_table", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_huawei_table_script_sends_only_what_geminidb_supports(aws: str) -> None:
    script = load_table_script()
    db, recorder = recorded_client(aws)
    assert script.create_geminidb_jobs_table(db, TABLE) is True
    assert script.create_geminidb_jobs_table(db, TABLE) is False  # a second run changes nothing
    assert [operation for operation, _ in recorder.calls] == [
        "CreateTable",
        "UpdateTimeToLive",
        "CreateTable",
        "UpdateTimeToLive",
    ]
    violations = [p for operation, params in recorder.calls for p in geminidb_violations(operation, params)]
    assert violations == []
    table = db.describe_table(TableName=TABLE)["Table"]
    wanted = jobs_table_definition(TABLE)["GlobalSecondaryIndexes"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == sorted(
        i["IndexName"] for i in wanted
    )
    ttl = db.describe_time_to_live(TableName=TABLE)["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    # The job store works on the table it made.
    store = DynamoJobStore(TABLE, db)
    assert store.create(upload_job()) is True

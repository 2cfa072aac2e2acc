"""DynamoDB adapter for the job store (boto3, imported lazily); also serves Huawei GeminiDB's
DynamoDB-compatible API, so it uses only what both support: conditions with comparisons and
``attribute_not_exists``, ``begins_with`` filters, whole-item puts, no transactions.

Item layout: ``id`` (partition key), ``version``, ``state``, the whole job as JSON in ``doc``,
``source_key`` (bucket/key) with ``created_at`` for finding the jobs of an upload, ``updated_at``
for operator listings, and for unfinished jobs only ``open_state`` + ``next_check_at``: the sparse
index ``by_state_next_check`` then holds exactly the jobs the reconciler must look at, so it
queries instead of scanning. A finished job with an event still to deliver sits in the same index
under another ``open_state`` (``DELIVERING``), with its next delivery's time as ``next_check_at``.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job, JobState
from bucketscribe.ports.job_store import refuse_draft

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_JOBS_INDEX = "by_state_next_check"
SOURCE_INDEX = "by_source"
STATE_INDEX = "by_state_updated"
# Finished job records are kept this long for the status API, then expire (DynamoDB TTL).
FINISHED_JOB_RETENTION = timedelta(days=90)
# The index's key of finished jobs whose events are still being delivered (unfinished jobs: OPEN).
DELIVERING = "DELIVERING"


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


def source_key(bucket: str, key: str) -> str:
    return f"{bucket}/{key}"


class DynamoJobStore:
    def __init__(
        self,
        table_name: str,
        client: DynamoDBClient | None = None,
        *,
        endpoint_url: str | None = None,
        region_name: str | None = None,
        key_pair: tuple[str, SecretStr] | None = None,
    ) -> None:
        if client is None:
            import boto3
            from botocore.config import Config

            client = boto3.client(
                "dynamodb",
                endpoint_url=endpoint_url,
                region_name=region_name,
                # None: boto3's own chain (the function's role on AWS). A DynamoDB-compatible store
                # (Huawei's GeminiDB) checks the key pair of one of its database users instead.
                aws_access_key_id=key_pair[0] if key_pair else None,
                aws_secret_access_key=key_pair[1].get_secret_value() if key_pair else None,
                # A connection for each upload worked on at once (Limits.side_by_side, at most 64).
                config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=64),
            )
        self._db = client
        self._table = table_name

    @property
    def client(self) -> DynamoDBClient:
        """The DynamoDB client in use (the local stack hooks its fault injection there)."""
        return self._db

    def _item(self, job: Job) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": {"S": job.id},
            "version": {"N": str(job.version)},
            "state": {"S": job.state.value},
            "doc": {"S": job.model_dump_json()},
            "source_key": {"S": source_key(job.source.bucket, job.source.key)},
            "created_at": {"S": _iso(job.created_at)},
            "updated_at": {"S": _iso(job.updated_at)},
        }
        if not job.state.is_final:
            item["open_state"] = {"S": "OPEN"}
            item["next_check_at"] = {"S": _iso(job.next_check_at or job.updated_at)}
        else:
            item["expires_at"] = {"N": str(int((job.updated_at + FINISHED_JOB_RETENTION).timestamp()))}
        if job.state.is_final and (delivery_at := job.next_delivery_at) is not None:
            item["open_state"] = {"S": DELIVERING}
            item["next_check_at"] = {"S": _iso(delivery_at)}
        return item

    def _conditional_put(
        self,
        item: dict[str, Any],
        condition: str,
        values: dict[str, Any] | None,
        names: dict[str, str] | None = None,
    ) -> bool:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"TableName": self._table, "Item": item, "ConditionExpression": condition}
        if values:
            kwargs["ExpressionAttributeValues"] = values
        if names:
            kwargs["ExpressionAttributeNames"] = names
        try:
            self._db.put_item(**kwargs)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def create(self, job: Job) -> bool:
        refuse_draft(job)
        return self._conditional_put(self._item(job), "attribute_not_exists(id)", None)

    def get(self, job_id: str) -> Job | None:
        response = self._db.get_item(TableName=self._table, Key={"id": {"S": job_id}}, ConsistentRead=True)
        item = response.get("Item")
        return Job.model_validate_json(item["doc"]["S"]) if item else None

    def save(self, job: Job) -> bool:
        return self._conditional_put(
            self._item(job), "version = :previous", {":previous": {"N": str(job.version - 1)}}
        )

    def take_lease(self, name: str, *, owner: str, until: datetime, now: datetime) -> bool:
        # Same table, its own key space ("lease#<name>"); expired leases are taken over in place.
        item = {
            "id": {"S": _lease_key(name)},
            "owner": {"S": owner},
            "until": {"S": _iso(until)},
            "expires_at": {"N": str(int((until + FINISHED_JOB_RETENTION).timestamp()))},
        }
        return self._conditional_put(
            item,
            "attribute_not_exists(id) OR #until <= :now",
            {":now": {"S": _iso(now)}},
            {"#until": "until"},
        )

    def end_lease(self, name: str, *, owner: str) -> None:
        # Run out at once, if still ours: a put like taking it (no delete to grant, nor to support).
        item = {
            "id": {"S": _lease_key(name)},
            "owner": {"S": owner},
            "until": {"S": _iso(datetime.min.replace(tzinfo=UTC))},
            "expires_at": {"N": str(int((utc_now() + FINISHED_JOB_RETENTION).timestamp()))},
        }
        self._conditional_put(item, "#owner = :owner", {":owner": {"S": owner}}, {"#owner": "owner"})

    def bind_task(
        self, provider: str, task_id: str, files: dict[str, str], *, exclusive: bool = False
    ) -> dict[str, str]:
        # Same table, another key space: "task#<provider>#<id>" never collides with a job id (hex).
        # A task is new when its submitter records it: created in one conditional write. Else read,
        # merge, and write over the revision read (optimistic, like the jobs themselves).
        assume_new = bool(files)
        for _ in range(8):
            stored, revision = ({}, 0) if assume_new else self._task_item(provider, task_id)
            merged = {**files, **stored}
            if stored and (merged == stored or (exclusive and not files.keys() & stored.keys())):
                return stored
            item = {
                "id": {"S": _task_key(provider, task_id)},
                "files": {"M": {job_id: {"S": file} for job_id, file in merged.items()}},
                "revision": {"N": str(revision + 1)},
                "expires_at": {"N": str(int((utc_now() + FINISHED_JOB_RETENTION).timestamp()))},
            }
            if revision == 0:
                written = self._conditional_put(item, "attribute_not_exists(id)", None)
            else:
                written = self._conditional_put(
                    item, "revision = :revision", {":revision": {"N": str(revision)}}
                )
            if written:
                return merged
            assume_new = False  # it was there after all: read it and merge
        raise RuntimeError(f"the record of {provider} task {task_id} kept changing")

    def _task_item(self, provider: str, task_id: str) -> tuple[dict[str, str], int]:
        item = self._db.get_item(
            TableName=self._table, Key={"id": {"S": _task_key(provider, task_id)}}, ConsistentRead=True
        ).get("Item")
        if not item:
            return {}, 0
        files = {job_id: value["S"] for job_id, value in item["files"]["M"].items()}
        return files, int(item.get("revision", {}).get("N", "1"))

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        return self._task_item(provider, task_id)[0]

    def _query(self, limit: int, **kwargs: Any) -> list[Job]:
        jobs: list[Job] = []
        while len(jobs) < limit:
            response = self._db.query(TableName=self._table, Limit=limit - len(jobs), **kwargs)
            jobs.extend(Job.model_validate_json(item["doc"]["S"]) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return jobs

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        return self._query(
            limit,
            IndexName=OPEN_JOBS_INDEX,
            KeyConditionExpression="open_state = :open AND next_check_at <= :now",
            ExpressionAttributeValues={":open": {"S": "OPEN"}, ":now": {"S": _iso(now)}},
        )

    def deliveries_due(self, now: datetime, *, limit: int) -> list[Job]:
        return self._query(
            limit,
            IndexName=OPEN_JOBS_INDEX,
            KeyConditionExpression="open_state = :delivering AND next_check_at <= :now",
            ExpressionAttributeValues={":delivering": {"S": DELIVERING}, ":now": {"S": _iso(now)}},
        )

    def for_source(self, bucket: str, key: str, *, limit: int = 10) -> list[Job]:
        return self._query(
            limit,
            IndexName=SOURCE_INDEX,
            KeyConditionExpression="source_key = :source",
            ExpressionAttributeValues={":source": {"S": source_key(bucket, key)}},
            ScanIndexForward=False,
        )

    def listing(
        self, *, state: JobState | None, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        per_state = [self._by_state(s, since, key_prefix, limit) for s in ([state] if state else JobState)]
        merged = heapq.merge(*per_state, key=lambda job: job.updated_at, reverse=True)
        return [job for _, job in zip(range(limit), merged, strict=False)]

    def _by_state(
        self, state: JobState, since: datetime | None, key_prefix: str | None, limit: int
    ) -> list[Job]:
        condition = "#state = :state"
        values: dict[str, Any] = {":state": {"S": state.value}}
        if since is not None:
            condition += " AND updated_at >= :since"
            values[":since"] = {"S": _iso(since)}
        kwargs: dict[str, Any] = {
            "IndexName": STATE_INDEX,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": values,
            "ScanIndexForward": False,
        }
        if key_prefix:
            kwargs["FilterExpression"] = "begins_with(source_key, :prefix)"
            values[":prefix"] = {"S": key_prefix}
        return self._query(limit, **kwargs)


def _task_key(provider: str, task_id: str) -> str:
    return f"task#{provider}#{task_id}"


def _lease_key(name: str) -> str:
    return f"lease#{name}"


def jobs_table_definition(table_name: str, *, throughput: dict[str, int] | None = None) -> dict[str, Any]:
    """The table as infra/ defines it (CreateTable arguments), for the local stack and tests.

    On demand by default; with ``throughput``, provisioned instead (GeminiDB takes no
    ``BillingMode``: its instances are billed by node, so the numbers are nominal there).
    """

    def index(name: str, hash_key: str, range_key: str) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "IndexName": name,
            "KeySchema": [
                {"AttributeName": hash_key, "KeyType": "HASH"},
                {"AttributeName": range_key, "KeyType": "RANGE"},
            ],
            "Projection": {"ProjectionType": "ALL"},
        }
        if throughput:
            spec["ProvisionedThroughput"] = dict(throughput)
        return spec

    billing: dict[str, Any] = (
        {"ProvisionedThroughput": dict(throughput)} if throughput else {"BillingMode": "PAY_PER_REQUEST"}
    )
    return {
        "TableName": table_name,
        **billing,
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in (
                "id",
                "open_state",
                "next_check_at",
                "source_key",
                "created_at",
                "state",
                "updated_at",
            )
        ],
        "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            index(OPEN_JOBS_INDEX, "open_state", "next_check_at"),
            index(SOURCE_INDEX, "source_key", "created_at"),
            index(STATE_INDEX, "state", "updated_at"),
        ],
    }


def create_jobs_table(client: DynamoDBClient, table_name: str) -> None:
    client.create_table(**jobs_table_definition(table_name))

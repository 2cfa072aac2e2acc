"""DynamoDB adapter for the job store (boto3, imported lazily).

Item layout: ``id`` (partition key), ``state``, the whole job as JSON in ``doc``,
and for unfinished jobs only ``open_state`` + ``next_check_at``: the sparse GSI
``by_state_next_check`` then holds exactly the jobs the reconciler must look at,
so it queries instead of scanning.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bucketscribe.model import Job, JobState, utc_now

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

OPEN_JOBS_INDEX = "by_state_next_check"
# Finished job records are kept this long for GET /jobs/{id}, then expire (DynamoDB TTL).
FINISHED_JOB_RETENTION = timedelta(days=90)


def _iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds")


class DynamoJobStore:
    def __init__(
        self, table_name: str, client: DynamoDBClient | None = None, *, endpoint_url: str | None = None
    ) -> None:
        if client is None:
            import boto3

            client = boto3.client("dynamodb", endpoint_url=endpoint_url)
        self._db = client
        self._table = table_name

    def _item(self, job: Job) -> dict[str, Any]:
        item: dict[str, Any] = {
            "id": {"S": job.id},
            "state": {"S": job.state.value},
            "doc": {"S": job.model_dump_json()},
        }
        if job.claimed_until is not None:
            item["claimed_until"] = {"S": _iso(job.claimed_until)}
        if not job.state.is_final:
            item["open_state"] = {"S": "OPEN"}
            item["next_check_at"] = {"S": _iso(job.next_check_at or job.updated_at)}
        else:
            item["expires_at"] = {"N": str(int((job.updated_at + FINISHED_JOB_RETENTION).timestamp()))}
        return item

    def create(self, job: Job) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(job),
                ConditionExpression="attribute_not_exists(id)",
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def get(self, job_id: str) -> Job | None:
        response = self._db.get_item(TableName=self._table, Key={"id": {"S": job_id}}, ConsistentRead=True)
        item = response.get("Item")
        return Job.model_validate_json(item["doc"]["S"]) if item else None

    def claim(self, job: Job, *, now: datetime) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(job),
                ConditionExpression=(
                    "#state = :accepted AND (attribute_not_exists(claimed_until) OR claimed_until < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":accepted": {"S": JobState.ACCEPTED.value},
                    ":now": {"S": _iso(now)},
                },
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def replace(self, job: Job, *, expected: Iterable[JobState]) -> bool:
        from botocore.exceptions import ClientError

        states = list(expected)
        names = {f":s{i}": {"S": state.value} for i, state in enumerate(states)}
        try:
            self._db.put_item(
                TableName=self._table,
                Item=self._item(job),
                ConditionExpression=f"#state IN ({', '.join(names)})",
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues=names,
            )
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def record_task(self, provider: str, task_id: str, files: dict[str, str]) -> None:
        # Same table, another key space: "task#<provider>#<id>" never collides with a job id (hex).
        self._db.put_item(
            TableName=self._table,
            Item={
                "id": {"S": _task_key(provider, task_id)},
                "files": {"M": {job_id: {"S": file} for job_id, file in files.items()}},
                "expires_at": {"N": str(int((utc_now() + FINISHED_JOB_RETENTION).timestamp()))},
            },
        )

    def task_files(self, provider: str, task_id: str) -> dict[str, str]:
        item = self._db.get_item(
            TableName=self._table, Key={"id": {"S": _task_key(provider, task_id)}}, ConsistentRead=True
        ).get("Item")
        return {job_id: value["S"] for job_id, value in item["files"]["M"].items()} if item else {}

    def due(self, now: datetime, *, limit: int) -> list[Job]:
        jobs: list[Job] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": OPEN_JOBS_INDEX,
            "KeyConditionExpression": "open_state = :open AND next_check_at <= :now",
            "ExpressionAttributeValues": {":open": {"S": "OPEN"}, ":now": {"S": _iso(now)}},
        }
        while len(jobs) < limit:
            response = self._db.query(Limit=limit - len(jobs), **kwargs)
            jobs.extend(Job.model_validate_json(item["doc"]["S"]) for item in response.get("Items", []))
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        return jobs


def _task_key(provider: str, task_id: str) -> str:
    return f"task#{provider}#{task_id}"


def create_jobs_table(client: DynamoDBClient, table_name: str) -> None:
    """The table as infra/ defines it, for the local stack and tests."""
    client.create_table(
        TableName=table_name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "open_state", "AttributeType": "S"},
            {"AttributeName": "next_check_at", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": OPEN_JOBS_INDEX,
                "KeySchema": [
                    {"AttributeName": "open_state", "KeyType": "HASH"},
                    {"AttributeName": "next_check_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )

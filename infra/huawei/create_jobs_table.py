"""Create the job table in a GeminiDB DynamoDB-compatible instance (run once per deploy; safe to
run again). GeminiDB creates tables only through the DynamoDB API, so Terraform cannot.

    .venv/bin/python infra/huawei/create_jobs_table.py --endpoint http://192.168.0.10 \
        [--table bucketscribe-jobs] [--region cn-north-4]

Run it from a machine inside the instance's VPC (an ECS, or CloudShell in that VPC). Credentials
are boto3's usual ones (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in the environment): use the
values your GeminiDB instance expects.

The table is the one the job store defines (``bucketscribe.clouds.aws.job_store.jobs_table_definition``),
with ``ProvisionedThroughput`` in place of ``BillingMode``: GeminiDB's compatibility page lists
``BillingMode`` as unsupported and ``ProvisionedThroughput`` as supported (an instance is billed by
its nodes, not by capacity units, so the numbers are nominal). TTL on ``expires_at`` is switched on
with ``UpdateTimeToLive``, which it supports.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from bucketscribe.clouds.aws.job_store import jobs_table_definition

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

TTL_ATTRIBUTE = "expires_at"
NOMINAL_THROUGHPUT = {"ReadCapacityUnits": 100, "WriteCapacityUnits": 100}


def create_geminidb_jobs_table(client: DynamoDBClient, table: str) -> bool:
    """Create ``table`` with its indexes and TTL; ``False`` if it existed (TTL is still ensured)."""
    try:
        client.create_table(**jobs_table_definition(table, throughput=NOMINAL_THROUGHPUT))
        created = True
    except client.exceptions.ResourceInUseException:
        created = False
    client.update_time_to_live(
        TableName=table, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
    )
    return created


def main() -> None:
    import boto3

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--endpoint", required=True, help="the instance's load-balancer address")
    parser.add_argument("--table", default="bucketscribe-jobs")
    parser.add_argument("--region", default="cn-north-4")
    options = parser.parse_args()
    client = boto3.client("dynamodb", endpoint_url=options.endpoint, region_name=options.region)
    created = create_geminidb_jobs_table(client, options.table)
    print(f"{options.table}: {'created' if created else 'already there'}, TTL on {TTL_ATTRIBUTE}")


if __name__ == "__main__":
    main()

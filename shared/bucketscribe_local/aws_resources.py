"""The AWS side of the local stack, provisioned on moto server like infra/ provisions it on AWS.

A private bucket whose uploads under the input prefix notify an SQS queue
(with a dead-letter queue) and the jobs table with its indexes.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from bucketscribe.clouds.aws.job_store import create_jobs_table

LOCAL_REGION = "us-east-1"
LOCAL_ACCESS_KEY = "local-access-key"  # moto accepts any key; these only name the local account
LOCAL_SECRET_KEY = "local-secret-key"  # noqa: S105 - not a secret: moto server does not check it


class LocalAwsNames(BaseModel):
    bucket: str = "recordings"
    jobs_table: str = "bucketscribe-jobs"
    queue: str = "bucketscribe-uploads"
    dead_letter_queue: str = "bucketscribe-uploads-dlq"
    input_prefix: str = "incoming/"
    # What the bucket notifies about; None = the input prefix. "" (the whole bucket) is the
    # riskiest set-up: our own outputs then reach the submit function and must be skipped.
    notification_prefix: str | None = None
    # Short locally so a retried message comes back quickly; AWS uses 6 × the function timeout.
    # The claim lease (LocalStackOptions.claim_lease_s) must stay below it.
    visibility_timeout_s: int = 30


class LocalAwsResources(BaseModel):
    names: LocalAwsNames
    queue_url: str
    dead_letter_queue_url: str


def provision(session: Any, endpoint_url: str, names: LocalAwsNames) -> LocalAwsResources:
    s3 = session.client("s3", endpoint_url=endpoint_url)
    sqs = session.client("sqs", endpoint_url=endpoint_url)
    dynamodb = session.client("dynamodb", endpoint_url=endpoint_url)

    dlq_url = sqs.create_queue(QueueName=names.dead_letter_queue)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    queue_url = sqs.create_queue(
        QueueName=names.queue,
        Attributes={
            "VisibilityTimeout": str(names.visibility_timeout_s),
            "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}),
        },
    )["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]

    s3.create_bucket(Bucket=names.bucket)
    s3.put_public_access_block(
        Bucket=names.bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    notify: dict[str, Any] = {"Id": "uploads", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    prefix = names.input_prefix if names.notification_prefix is None else names.notification_prefix
    if prefix:
        notify["Filter"] = {"Key": {"FilterRules": [{"Name": "prefix", "Value": prefix}]}}
    s3.put_bucket_notification_configuration(
        Bucket=names.bucket, NotificationConfiguration={"QueueConfigurations": [notify]}
    )
    create_jobs_table(dynamodb, names.jobs_table)
    return LocalAwsResources(names=names, queue_url=queue_url, dead_letter_queue_url=dlq_url)

"""AWS: Lambda entry points, S3, DynamoDB, SQS and Secrets Manager adapters, S3 event shapes."""

from bucketscribe.clouds.aws.plugin import CLOUD

__all__ = ["CLOUD"]

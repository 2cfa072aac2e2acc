"""AWS: S3, DynamoDB, SQS (the upload queue's dead letters), Secrets Manager and EventBridge (jobs'
events), as the cloud registry knows them. The SDK (boto3) is imported when an adapter is built."""

from __future__ import annotations

from bucketscribe.clouds.aws.settings import AwsSettings
from bucketscribe.ports.dead_letters import DeadLetters
from bucketscribe.ports.event_bus import EventBus
from bucketscribe.ports.job_store import JobStore
from bucketscribe.ports.secrets import LazySecretStore, SecretStore
from bucketscribe.ports.storage import ObjectStorage
from bucketscribe.settings import Settings


class AwsCloud:
    name = "aws"
    uri_scheme = "s3"

    def settings_problems(self, settings: Settings) -> list[str]:
        return []

    def secret_store(self) -> SecretStore:
        from bucketscribe.clouds.aws.secrets import AwsSecretsManager

        return AwsSecretsManager()

    def storage(self) -> ObjectStorage:
        from bucketscribe.clouds.aws.storage import S3Storage

        own = AwsSettings()
        if own.aws_endpoint_url:
            # The local stack: one endpoint with static keys signs its own URLs (no regions, no
            # sessions that expire).
            return S3Storage(endpoint_url=own.aws_endpoint_url)
        from bucketscribe.clouds.aws.url_signing import (
            RegionalUrlSigner,
            SignerKeySource,
            bucket_regions,
        )

        # The signer's key is read on the first presign, so functions that never presign (the
        # callback) never read it.
        signing_key = SignerKeySource(own.url_signer_secret_name, LazySecretStore(self.secret_store))
        signer = RegionalUrlSigner(bucket_regions(own.recordings_bucket), signing_key)
        return S3Storage(url_signer=signer)

    def job_store(self, settings: Settings, secrets: SecretStore) -> JobStore:
        from bucketscribe.clouds.aws.job_store import DynamoJobStore

        return DynamoJobStore(settings.jobs_table, endpoint_url=AwsSettings().aws_endpoint_url)

    def dead_letters(self, storage: ObjectStorage) -> DeadLetters | None:
        own = AwsSettings()
        if not own.dead_letter_queue_url:
            return None
        from bucketscribe.clouds.aws.dead_letters import SqsDeadLetters

        return SqsDeadLetters(own.dead_letter_queue_url, endpoint_url=own.aws_endpoint_url)

    def event_bus(self) -> EventBus | None:
        own = AwsSettings()
        if not own.event_bus_name:
            return None
        from bucketscribe.clouds.aws.event_bus import EventBridgeBus

        return EventBridgeBus(own.event_bus_name, endpoint_url=own.aws_endpoint_url)


CLOUD = AwsCloud()

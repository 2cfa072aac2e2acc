"""Which job store the operator's commands read, in this order:

1. ``--stage STAGE`` (or ``--stack NAME``): a Serverless deploy on AWS, found by its CloudFormation
   stack's outputs (``JobsTableName``), with the shell's AWS credentials and region (``--region``);
2. ``--local PORT``: the running ``bucketscribe up`` whose S3 endpoint is on that port;
3. the functions' own settings, when any of them is set (``BUCKETSCRIBE_CLOUD``,
   ``BUCKETSCRIBE_JOBS_TABLE``, ``BUCKETSCRIBE_AWS_ENDPOINT_URL``, ``BUCKETSCRIBE_JOBS_ENDPOINT_URL``):
   exactly what the deployed functions read (Huawei's GeminiDB is reached this way);
4. the one ``bucketscribe up`` running on this machine (``local_stacks.py``).

Nothing found, or two local stacks and nothing to choose between them, is a usage error (exit 2);
a job store that is named but cannot be reached is a failure (exit 1). Each is one line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from bucketscribe.cli.local_stacks import LocalStackFile, running_stacks
from bucketscribe.cli.progress import ActivitySource, EmulatorActivity, NoActivity
from bucketscribe.ports.job_store import JobStore

# The settings that name a job store: when one of them is set, the user means that store.
JOB_STORE_SETTINGS = (
    "BUCKETSCRIBE_CLOUD",
    "BUCKETSCRIBE_JOBS_TABLE",
    "BUCKETSCRIBE_AWS_ENDPOINT_URL",
    "BUCKETSCRIBE_JOBS_ENDPOINT_URL",
)
SERVICE = "bucketscribe"  # serverless.yml's service: its stacks are named <service>-<stage>
TABLE_OUTPUT = "JobsTableName"  # infra/resources/outputs.yml


class NoJobStore(Exception):
    """Nothing says which job store to read (exit 2): the message says what would."""


class JobStoreUnreachable(Exception):
    """The job store that was named cannot be found or read (exit 1)."""


@dataclass(frozen=True)
class FoundJobStore:
    store: JobStore
    scheme: str
    """How objects are written on the cloud it runs on (``s3``, ``obs``)."""
    where: str
    """The store in words, for messages (``the local stack on 127.0.0.1:4566``)."""
    activity: ActivitySource = field(default_factory=NoActivity)
    """Who can say how far into a file a provider is (the local emulators); none when deployed."""


@dataclass(frozen=True)
class Choice:
    """What the command line said of the job store: ``--stage``, ``--stack``, ``--region``, ``--local``."""

    stage: str | None = None
    stack: str | None = None
    region: str | None = None
    local_port: int | None = None


def find_job_store(choice: Choice) -> FoundJobStore:
    if choice.stage or choice.stack:
        return _deployed_on_aws(choice.stack or f"{SERVICE}-{choice.stage}", choice.region)
    if choice.local_port is not None:
        return _local(_local_stack_on(choice.local_port))
    if any(os.environ.get(name) for name in JOB_STORE_SETTINGS):
        return _from_settings()
    stacks = running_stacks()
    if len(stacks) == 1:
        return _local(stacks[0])
    if stacks:
        ports = ", ".join(str(stack.port) for stack in stacks)
        raise NoJobStore(
            f"{len(stacks)} local stacks are running (S3 ports {ports}): pick one with --local PORT"
        )
    raise NoJobStore(
        "no job store to read: no `bucketscribe up` is running on this machine, and nothing names a "
        "deployment (--stage STAGE for the AWS deploy, or the functions' settings: BUCKETSCRIBE_CLOUD, "
        "BUCKETSCRIBE_JOBS_TABLE and that cloud's endpoint and credentials)"
    )


def _local_stack_on(port: int) -> LocalStackFile:
    stacks = running_stacks()
    for stack in stacks:
        if stack.port == port:
            return stack
    running = ", ".join(str(stack.port) for stack in stacks) or "none"
    raise NoJobStore(f"--local {port}: no `bucketscribe up` listens on that port (running: {running})")


def _local(stack: LocalStackFile) -> FoundJobStore:
    from pydantic import SecretStr

    from bucketscribe.clouds.aws.job_store import DynamoJobStore
    from bucketscribe.clouds.registry import cloud

    # Both shapes of the local stack keep their jobs in moto's DynamoDB, whatever cloud they play.
    store = DynamoJobStore(
        stack.jobs_table,
        endpoint_url=stack.endpoint_url,
        region_name=stack.region,
        key_pair=(stack.access_key_id, SecretStr(stack.secret_access_key)),
    )
    return FoundJobStore(
        store=store,
        scheme=cloud(stack.cloud).uri_scheme,
        where=f"the local stack on {stack.endpoint_url.removeprefix('http://')}",
        activity=EmulatorActivity(stack.emulator_urls),
    )


def _from_settings() -> FoundJobStore:
    from bucketscribe.clouds.registry import cloud
    from bucketscribe.wiring import environment_secrets, environment_settings

    try:
        settings = environment_settings()
        deployed_on = cloud(settings.cloud)
    except (ValueError, LookupError) as exc:
        raise NoJobStore(f"settings: {str(exc).splitlines()[-1].strip()}") from None
    try:
        store = deployed_on.job_store(settings, environment_secrets())
    except Exception as exc:  # a secret store or SDK that refuses: the user needs the reason, once
        raise JobStoreUnreachable(
            f"cannot open the job store {settings.jobs_table!r}: {one_line_reason(exc)}"
        ) from None
    return FoundJobStore(
        store=store, scheme=deployed_on.uri_scheme, where=f"the job store {settings.jobs_table!r}"
    )


def _deployed_on_aws(stack_name: str, region: str | None) -> FoundJobStore:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    from bucketscribe.clouds.aws.job_store import DynamoJobStore
    from bucketscribe.clouds.registry import cloud

    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise NoJobStore(
            f"stack {stack_name}: no AWS region: pass --region or set AWS_REGION (or AWS_DEFAULT_REGION)"
        )
    try:
        described = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            raise JobStoreUnreachable(
                f"no CloudFormation stack {stack_name!r} in {session.region_name} (deployed with "
                f"`serverless deploy --stage STAGE`, it is {SERVICE}-STAGE; --region picks another region)"
            ) from None
        raise JobStoreUnreachable(f"cannot read stack {stack_name!r}: {one_line_reason(exc)}") from None
    except BotoCoreError as exc:  # no credentials, no network
        raise JobStoreUnreachable(f"cannot read stack {stack_name!r}: {one_line_reason(exc)}") from None
    outputs = {o["OutputKey"]: o["OutputValue"] for o in described[0].get("Outputs", [])}
    table = outputs.get(TABLE_OUTPUT)
    if not table:
        raise JobStoreUnreachable(f"stack {stack_name!r} has no {TABLE_OUTPUT} output: is it bucketscribe's?")
    return FoundJobStore(
        store=DynamoJobStore(table, client=session.client("dynamodb")),
        scheme=cloud("aws").uri_scheme,
        where=f"the job store {table!r} of stack {stack_name} ({session.region_name})",
    )


def one_line_reason(exc: Exception) -> str:
    """An SDK's message on one line, after the exception's name (which often says more)."""
    text = " ".join(str(exc).split())
    reason = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    if type(exc).__name__ == "NoRegionError":
        reason += " (set AWS_REGION or AWS_DEFAULT_REGION)"
    return reason

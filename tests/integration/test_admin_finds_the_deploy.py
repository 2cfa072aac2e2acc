"""The operator's commands find an AWS deploy by its stage, as `aws` and `sls` users expect: the
CloudFormation stack `bucketscribe-<stage>` names the job table in its outputs (JobsTableName,
infra/resources/outputs.yml). The real CLI, in its own process, against moto over the wire
(boto3 honours AWS_ENDPOINT_URL, as it would a VPC endpoint)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import boto3
import pytest

from bucketscribe.clouds.aws.job_store import DynamoJobStore, create_jobs_table
from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job import Job
from bucketscribe.domain.upload import ObjectRef
from tests.cli_process import user_environment

pytestmark = pytest.mark.integration

REGION = "eu-west-1"
TABLE = "bucketscribe-e2e-JobsTable-1X2Y3Z"  # CloudFormation's kind of name: only the outputs know it
OUTPUTS_TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"JobsTableName": {"Value": TABLE}, "RecordingsBucketName": {"Value": "recordings"}},
}


def _cli(*args: str, endpoint: str, region: str | None = None) -> tuple[int, str, str]:
    env = {
        **user_environment(),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        # The machine's own AWS configuration (a default region, a profile) is not the test's.
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    if region:
        env["AWS_DEFAULT_REGION"] = region
    done = subprocess.run(
        [sys.executable, "-m", "bucketscribe.cli", *args], capture_output=True, text=True, env=env, timeout=60
    )
    return done.returncode, done.stdout, done.stderr


@pytest.fixture
def deployed(aws: str) -> Job:
    """A deploy of stage e2e: its stack's outputs, its job table, one job in it."""
    session = boto3.session.Session(region_name=REGION)
    session.client("cloudformation", endpoint_url=aws).create_stack(
        StackName="bucketscribe-e2e", TemplateBody=json.dumps(OUTPUTS_TEMPLATE)
    )
    dynamodb = session.client("dynamodb", endpoint_url=aws)
    create_jobs_table(dynamodb, TABLE)
    job = Job.for_upload(
        ObjectRef(bucket="recordings", key="incoming/call.wav", etag="e1"),
        profile="default",
        provider="sis",
        model=None,
        now=utc_now(),
    )
    assert DynamoJobStore(TABLE, dynamodb).create(job)
    return job


def test_stage_finds_the_job_table_in_the_stacks_outputs(aws: str, deployed: Job) -> None:
    code, out, err = _cli(
        "status", "--stage", "e2e", "--region", REGION, "s3://recordings/incoming/call.wav", endpoint=aws
    )
    assert code == 0, err
    assert deployed.id in out and "s3://recordings/incoming/call.wav" in out
    code, out, err = _cli("jobs", "--stack", "bucketscribe-e2e", "--json", endpoint=aws, region=REGION)
    assert code == 0, err
    assert [json.loads(line)["id"] for line in out.splitlines()] == [deployed.id]


def test_a_stage_that_is_not_deployed_is_one_line_and_exit_1(aws: str, deployed: Job) -> None:
    code, out, err = _cli("jobs", "--stage", "prod", "--region", REGION, endpoint=aws)
    assert code == 1 and out == ""
    assert err == (
        f"bucketscribe: error: no CloudFormation stack 'bucketscribe-prod' in {REGION} (deployed with "
        "`serverless deploy --stage STAGE`, it is bucketscribe-STAGE; --region picks another region)\n"
    )


def test_a_stage_without_a_region_or_a_region_without_a_stage_is_bad_usage(aws: str) -> None:
    code, _, err = _cli("jobs", "--stage", "e2e", endpoint=aws)
    assert code == 2 and err.count("\n") == 1 and "no AWS region: pass --region" in err
    code, _, err = _cli("jobs", "--region", REGION, endpoint=aws)
    assert code == 2 and "--region: goes with --stage or --stack" in err

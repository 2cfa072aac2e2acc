"""The AWS deploy packages into the CloudFormation and zips we mean to ship.

Real tools over their real interfaces: ``infra/build_layer.sh`` (pip, cp312 aarch64 wheels), the
project's own Serverless Framework v3 (``npx serverless package``) and ``cfn-lint``. The one AWS
call ``package`` makes (CloudFormation DescribeStacks, to reuse an unchanged layer) goes through
moto's HTTPS proxy, which answers as AWS does for a stack that does not exist yet.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.infra.artifacts import (
    RUNTIME_PROBE,
    SERVER_FRAMEWORKS,
    server_frameworks_in,
    trimmed_leftovers,
    unpacked_bytes,
    wheel_tags,
    wrong_tags,
)
from tests.infra.aws_package import (
    HANDLERS,
    LAMBDA_ENVIRONMENT_LIMIT_BYTES,
    LAMBDA_UNZIPPED_LIMIT_BYTES,
    PROFILES_PARAM,
    REGION,
    REPO,
    STAGE,
    HostLayer,
    Packaged,
    function_id,
    lambda_env,
    role_id,
    run_tool,
    sls_env,
    sls_package_cmd,
)

pytestmark = pytest.mark.infra

PROFILES_PARAM_LIST = json.loads(PROFILES_PARAM)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _allow_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in policy["PolicyDocument"]["Statement"]
        if statement["Effect"] == "Allow"
    ]


def _actions(role: dict[str, Any]) -> set[str]:
    return {action for st in _allow_statements(role) for action in _as_list(st["Action"])}


def _resources_for(role: dict[str, Any], action: str) -> list[Any]:
    return [
        res
        for st in _allow_statements(role)
        if action in _as_list(st["Action"])
        for res in _as_list(st["Resource"])
    ]


def _joined_suffix(resource: Any) -> str:
    """The literal tail of a ``Fn::Join`` ARN, e.g. ``/incoming/*``."""
    parts = resource["Fn::Join"][1]
    assert isinstance(parts[-1], str), resource
    return parts[-1]


# -- functions and events ---------------------------------------------------------------------


def test_three_functions_on_python312_arm64_with_the_core_layer(packaged: Packaged) -> None:
    functions = packaged.of_type("AWS::Lambda::Function")
    assert set(functions) == {function_id(name) for name in HANDLERS}
    for name, handler in HANDLERS.items():
        props = functions[function_id(name)]["Properties"]
        assert props["Handler"] == handler
        assert props["Runtime"] == "python3.12"
        assert props["Architectures"] == ["arm64"]
        assert props["Layers"] == [{"Ref": "CoreLambdaLayer"}]
    layer = packaged.props("CoreLambdaLayer")
    assert layer["CompatibleRuntimes"] == ["python3.12"]
    assert layer["CompatibleArchitectures"] == ["arm64"]


def test_function_environment_names_secrets_and_builds_the_callback_url(packaged: Packaged) -> None:
    env = packaged.props(function_id("callback"))["Environment"]["Variables"]
    assert env["BUCKETSCRIBE_JOBS_TABLE"] == {"Ref": "JobsTable"}
    assert env["BUCKETSCRIBE_INPUT_PREFIX"] == "incoming/"
    assert env["BUCKETSCRIBE_OUTPUT_PREFIX"] == "transcripts/"
    assert env["BUCKETSCRIBE_PROFILES"] == PROFILES_PARAM
    assert env["POWERTOOLS_SERVICE_NAME"] == "bucketscribe"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "bucketscribe"
    # Tracing is off unless asked for (Tracer() alone costs ~230 ms of cold start).
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert packaged.props(function_id("callback"))["TracingConfig"] == {"Mode": "PassThrough"}

    url_parts = env["BUCKETSCRIBE_CALLBACK_BASE_URL"]["Fn::Join"][1]
    assert url_parts[0] == "https://"
    assert {"Ref": "ApiGatewayRestApi"} in url_parts
    assert {"Ref": "AWS::Region"} in url_parts
    assert url_parts[-1] == f"/{STAGE}"

    secret_ids = set(packaged.of_type("AWS::SecretsManager::Secret"))
    for var in (
        "BUCKETSCRIBE_CALLBACK_SECRET_NAME",
        "BUCKETSCRIBE_STATUS_API_TOKEN_SECRET_NAME",
        "BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME",
        "BUCKETSCRIBE_DASHSCOPE_API_KEY_SECRET_NAME",
    ):
        assert env[var]["Ref"] in secret_ids, var


def test_submit_consumes_the_upload_queue_with_partial_batch_failures(packaged: Packaged) -> None:
    mappings = list(packaged.of_type("AWS::Lambda::EventSourceMapping").values())
    assert len(mappings) == 1
    props = mappings[0]["Properties"]
    assert props["FunctionName"] == {"Fn::GetAtt": [function_id("submit"), "Arn"]}
    assert props["EventSourceArn"] == {"Fn::GetAtt": ["UploadQueue", "Arn"]}
    assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]


def test_reconcile_runs_every_five_minutes(packaged: Packaged) -> None:
    rules = list(packaged.of_type("AWS::Events::Rule").values())
    assert len(rules) == 1
    assert rules[0]["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    assert rules[0]["Properties"]["Targets"][0]["Arn"] == {"Fn::GetAtt": [function_id("reconcile"), "Arn"]}


def test_callback_api_routes_without_gateway_auth(packaged: Packaged) -> None:
    api_resources = packaged.of_type("AWS::ApiGateway::Resource")

    def path_of(resource_ref: Any) -> str:
        if "Fn::GetAtt" in resource_ref:  # the API's root resource
            return ""
        props = api_resources[resource_ref["Ref"]]["Properties"]
        return f"{path_of(props['ParentId'])}/{props['PathPart']}"

    routes = {}
    for method in packaged.of_type("AWS::ApiGateway::Method").values():
        props = method["Properties"]
        routes[(props["HttpMethod"], path_of(props["ResourceId"]))] = props
    # The routes infra/functions.toml lists for the callback function (the Huawei deploy too).
    manifest = tomllib.loads((REPO / "infra" / "functions.toml").read_text(encoding="utf-8"))
    listed = manifest["functions"]["callback"]["trigger"]["routes"]
    assert set(routes) == {tuple(route.split(" ", 1)) for route in listed}
    callback_arn = {"Fn::GetAtt": [function_id("callback"), "Arn"]}
    for props in routes.values():
        # The handler authenticates (per-job token, signature, bearer token) and caps the body.
        assert props["AuthorizationType"] == "NONE"
        assert callback_arn in props["Integration"]["Uri"]["Fn::Join"][1]


# -- IAM ----------------------------------------------------------------------------------------


def test_each_function_has_its_own_role(packaged: Packaged) -> None:
    roles = packaged.of_type("AWS::IAM::Role")
    assert "IamRoleLambdaExecution" not in roles, "the framework's shared role must not be created"
    role_ids = {name: role_id(packaged.resources[function_id(name)]) for name in HANDLERS}
    assert len(set(role_ids.values())) == len(HANDLERS)
    for name, its_role in role_ids.items():
        assert its_role in roles, name
        principal = roles[its_role]["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
        assert principal == {"Service": "lambda.amazonaws.com"}
        logs = _resources_for(roles[its_role], "logs:PutLogEvents")
        assert logs == [{"Fn::GetAtt": [f"{name.capitalize()}LogGroup", "Arn"]}]


def test_no_wildcard_resources_except_namespaced_metrics(packaged: Packaged) -> None:
    roles = packaged.of_type("AWS::IAM::Role")
    users = packaged.of_type("AWS::IAM::User")
    assert set(users) == {"UrlSignerUser"}
    for logical_id, role in {**roles, **users}.items():
        # X-Ray (resource-less) comes only as a managed policy when tracing is Active.
        assert role["Properties"].get("ManagedPolicyArns", []) == [], logical_id
        for statement in _allow_statements(role):
            actions = _as_list(statement["Action"])
            assert not any(a == "*" or a.endswith(":*") for a in actions), (logical_id, actions)
            if "*" in _as_list(statement["Resource"]):
                assert actions == ["cloudwatch:PutMetricData"], (logical_id, statement)
                assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "bucketscribe"}}


def _client_calls(module: str, attribute: str) -> set[str]:
    """The boto3 client methods an adapter calls (``self._db.put_item(`` → ``PutItem``)."""
    source = (REPO / "shared" / "bucketscribe" / module).read_text(encoding="utf-8")
    methods = set(re.findall(rf"self\.{attribute}\.(\w+)\(", source))
    return {"".join(part.capitalize() for part in method.split("_")) for method in methods}


def _suffixes(role: dict[str, Any], action: str) -> list[str]:
    return sorted(_joined_suffix(r) for r in _resources_for(role, action) if "Fn::Join" in r)


def test_roles_grant_only_what_each_function_needs(packaged: Packaged) -> None:
    roles = {name: packaged.resources[role_id(packaged.resources[function_id(name)])] for name in HANDLERS}
    # Derived from the job store's code, so a new DynamoDB call without a permission fails here.
    job_store_calls = _client_calls("clouds/aws/job_store.py", "_db")
    assert {"PutItem", "GetItem", "Query"} <= job_store_calls
    jobs_table = {"Fn::GetAtt": ["JobsTable", "Arn"]}
    for name, role in roles.items():
        actions = _actions(role)
        assert not actions & {
            "dynamodb:Scan",
            "dynamodb:DeleteTable",
            "s3:PutBucketPolicy",
            "s3:DeleteBucket",
        }
        for call in job_store_calls - {"Query"}:  # Query reads indexes, each granted where used
            assert _resources_for(role, f"dynamodb:{call}") == [jobs_table], (name, call)
        assert _suffixes(role, "s3:PutObject") == ["/transcripts/*"], name
        # The only deletions: an earlier failure's report, replaced by a transcript.
        assert _suffixes(role, "s3:DeleteObject") in ([], ["/transcripts/*.error.json"]), name
        # Every role that heads objects may list, so a missing object is a 404, not a 403.
        assert _resources_for(role, "s3:ListBucket") == [{"Fn::GetAtt": ["RecordingsBucket", "Arn"]}], name
        assert {"Ref": "SisCredentialsSecret"} in _resources_for(role, "secretsmanager:GetSecretValue")

    submit, callback, reconcile = roles["submit"], roles["callback"], roles["reconcile"]
    assert {"sqs:ReceiveMessage", "sqs:DeleteMessage"} <= _actions(submit)
    assert _resources_for(submit, "sqs:ReceiveMessage") == [{"Fn::GetAtt": ["UploadQueue", "Arn"]}]
    # Uploads, the audio it makes for providers and presigns, and the error reports it looks for
    # when an event comes again (HeadObject needs GetObject); nothing else.
    reads = ["/incoming/*", "/transcripts/*.error.json", "/transcripts/*.speech.*"]
    assert _suffixes(submit, "s3:GetObject") == reads
    # The reconciler submits again what needs it, so it reads what the submit function reads,
    # and drains the dead-letter queue; it queries only the index of due jobs.
    assert _suffixes(reconcile, "s3:GetObject") == reads
    assert _suffixes(reconcile, "s3:DeleteObject") == ["/transcripts/*.error.json"]
    assert _resources_for(reconcile, "sqs:ReceiveMessage") == [
        {"Fn::GetAtt": ["UploadDeadLetterQueue", "Arn"]}
    ]
    assert _suffixes(reconcile, "dynamodb:Query") == ["/index/by_state_next_check"]
    # The callback writes outputs, replaces error reports, checks an upload (or a part's media)
    # is still there for a result to be fetched again, merges a split upload's parts, and finds
    # jobs by upload for the status API, and (a task that ended having waited for the provider's
    # capacity) the uploads waiting for it on the due index.
    assert _suffixes(callback, "s3:GetObject") == [
        "/incoming/*",
        "/transcripts/*.error.json",
        "/transcripts/*.speech.*",
    ]
    assert _suffixes(callback, "s3:DeleteObject") == ["/transcripts/*.error.json"]
    assert _suffixes(callback, "dynamodb:Query") == ["/index/by_source", "/index/by_state_next_check"]
    assert not any(a.startswith("sqs:") for a in _actions(callback))
    assert _resources_for(submit, "dynamodb:Query") == []
    # A real-time profile's transcript is written by the submit function, replacing a report.
    assert _suffixes(submit, "s3:DeleteObject") == ["/transcripts/*.error.json"]
    # Only the status API reads its bearer token; only the push route reads the push token.
    assert {"Ref": "StatusApiTokenSecret"} not in _resources_for(submit, "secretsmanager:GetSecretValue")
    assert {"Ref": "StatusApiTokenSecret"} in _resources_for(callback, "secretsmanager:GetSecretValue")
    for other in ("submit", "reconcile"):
        assert {"Ref": "PushTokenSecret"} not in _resources_for(roles[other], "secretsmanager:GetSecretValue")
    assert {"Ref": "PushTokenSecret"} in _resources_for(callback, "secretsmanager:GetSecretValue")
    assert "IdempotencyTable" not in packaged.resources  # one mechanism: the job store's own writes
    # Derived from the event bus adapter's code: each function may end a job and publish its
    # event, with the one call the adapter makes, to the deploy's bus only.
    assert _client_calls("clouds/aws/event_bus.py", "_events") == {"PutEvents"}
    bus = {"Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/default"}
    webhook_secrets = {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        f"bucketscribe-{STAGE}-webhook-*"
    }
    for name, role in roles.items():
        assert _resources_for(role, "events:PutEvents") == [bus], name
        assert webhook_secrets in _resources_for(role, "secretsmanager:GetSecretValue"), name


def test_the_url_signer_may_only_read_what_is_presigned_through_a_presigned_url(packaged: Packaged) -> None:
    """The user whose key signs the providers' media URLs: uploads (any version) and the audio made
    for a provider, read with a SigV4 presigned URL and no other way; no key in the template."""
    signer = packaged.resources["UrlSignerUser"]
    assert set(signer["Properties"]) == {"Path", "Policies"}  # no LoginProfile, no groups
    assert _actions(signer) == {"s3:GetObject", "s3:GetObjectVersion"}
    assert _suffixes(signer, "s3:GetObject") == ["/incoming/*", "/transcripts/*.speech.*"]
    assert _suffixes(signer, "s3:GetObjectVersion") == ["/incoming/*"]
    for statement in _allow_statements(signer):
        assert statement["Condition"]["StringEquals"] == {
            "s3:authType": "REST-QUERY-STRING",
            "s3:signatureversion": "AWS4-HMAC-SHA256",
        }
    assert packaged.of_type("AWS::IAM::AccessKey") == {}
    # The functions that presign may read its key: every one submits (the callback too, passing
    # a freed place at a provider's quota on to the next waiting upload).
    for name in HANDLERS:
        role = packaged.resources[role_id(packaged.resources[function_id(name)])]
        assert {"Ref": "UrlSignerSecret"} in _resources_for(role, "secretsmanager:GetSecretValue"), name
    env = packaged.props(function_id("submit"))["Environment"]["Variables"]
    assert env["BUCKETSCRIBE_URL_SIGNER_SECRET_NAME"] == {"Ref": "UrlSignerSecret"}
    assert env["BUCKETSCRIBE_RECORDINGS_BUCKET"] == {"Ref": "RecordingsBucket"}
    outputs = packaged.template["Outputs"]
    assert outputs["UrlSignerUserName"]["Value"] == {"Ref": "UrlSignerUser"}
    assert outputs["UrlSignerSecretArn"]["Value"] == {"Ref": "UrlSignerSecret"}


def test_scratch_space_holds_two_of_the_largest_part_a_provider_takes(packaged: Packaged) -> None:
    """submit and reconcile write what they make for a provider to /tmp before the bucket; a
    timed-out invocation leaves its file behind in a warm sandbox, so there is room for two."""
    from bucketscribe.domain.media_routing import PART_MARGIN
    from bucketscribe.providers.dashscope.files import DASHSCOPE_MAX_BYTES
    from bucketscribe.providers.sis.adapter import SIS_MAX_BYTES

    largest_part = max(DASHSCOPE_MAX_BYTES, SIS_MAX_BYTES) * PART_MARGIN
    for name in ("submit", "reconcile"):
        size_mb = packaged.props(function_id(name))["EphemeralStorage"]["Size"]
        assert 2 * largest_part <= size_mb * 10**6 and size_mb <= 10240, (name, size_mb)
    # The callback merges transcripts, never media: Lambda's default 512 MB.
    assert "EphemeralStorage" not in packaged.props(function_id("callback"))


def test_no_reserved_concurrency_unless_asked(packaged: Packaged) -> None:
    """A fresh account (concurrency quota 10, 10 kept unreserved) refuses any reservation."""
    template = packaged.template
    for name in HANDLERS:
        reserved = packaged.props(function_id(name)).get("ReservedConcurrentExecutions")
        if name != "reconcile":
            assert reserved is None, name
            continue
        assert reserved == {
            "Fn::If": [
                "ReconcileReservesConcurrency",
                {"Ref": "ReconcileReservedConcurrency"},
                {"Ref": "AWS::NoValue"},
            ]
        }
    assert template["Parameters"]["ReconcileReservedConcurrency"]["Default"] == ""
    assert "ReconcileReservesConcurrency" in template["Conditions"]


def deployed_value(name: str, value: Any) -> str:
    """What CloudFormation puts where the template references a resource, at its longest plausible
    length (generated names carry a random suffix), so the size below is not underestimated."""
    if isinstance(value, str):
        return value
    if name == "BUCKETSCRIBE_CALLBACK_BASE_URL":
        return f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/{STAGE}"
    ref = value["Ref"]
    if ref.endswith("Secret"):
        return f"arn:aws:secretsmanager:{REGION}:123456789012:secret:{ref}-{'A' * 12}-{'B' * 6}"
    if ref.endswith("Queue"):
        return f"https://sqs.{REGION}.amazonaws.com/123456789012/bucketscribe-{STAGE}-{ref}-{'C' * 12}"
    return f"bucketscribe-{STAGE}-{ref}-{'D' * 13}"


def environment_bytes(variables: dict[str, Any]) -> int:
    """Lambda's measure: every key and value, UTF-8 encoded, together at most 4 KB."""
    return sum(len(k.encode()) + len(deployed_value(k, v).encode()) for k, v in variables.items())


def test_every_function_environment_fits_lambdas_4_kb_with_room_for_profiles(packaged: Packaged) -> None:
    for name in HANDLERS:
        variables = packaged.props(function_id(name))["Environment"]["Variables"]
        size = environment_bytes(variables)
        without_profiles = size - len(variables["BUCKETSCRIBE_PROFILES"].encode())
        room = LAMBDA_ENVIRONMENT_LIMIT_BYTES - without_profiles
        print(f"{name}: environment {size} bytes; {room} bytes left for inline profiles")
        assert size <= LAMBDA_ENVIRONMENT_LIMIT_BYTES, name
        # infra/README.md promises about 2.3 KB of inline profiles; beyond, profilesFile. (It was
        # 2.5 KB until the URL signer's secret and the stack's bucket took ~200 bytes, and the
        # webhook secret and the event bus ~130 more: each is worth more than the room it takes.)
        assert room >= 2300, (name, room)
        # A profiles list that does not fit (here 3 KB) is refused by Lambda: the profiles file
        # exists for it.
        assert without_profiles + 3000 > LAMBDA_ENVIRONMENT_LIMIT_BYTES


def test_provider_settings_and_a_profiles_file_are_deploy_parameters(
    packaged: Packaged, moto_proxy: tuple[str, Path], tmp_path: Path
) -> None:
    """Every provider setting has a param mapped to the BUCKETSCRIBE_* setting the code reads; a
    profiles file travels in the function zip and leaves the inline variable empty."""
    defaults = packaged.props(function_id("submit"))["Environment"]["Variables"]
    assert json.loads(defaults["BUCKETSCRIBE_PROFILES"]) == PROFILES_PARAM_LIST
    assert defaults["BUCKETSCRIBE_DASHSCOPE_BASE_URL"] == "https://dashscope.aliyuncs.com/api/v1"
    assert defaults["BUCKETSCRIBE_DASHSCOPE_WS_URL"] == "wss://dashscope.aliyuncs.com/api-ws/v1/inference"
    assert defaults["BUCKETSCRIBE_SIS_REGION"] == "cn-north-4"
    # Unset settings are left out, so the code's defaults apply (the SDK's SIS endpoint, the
    # API key's default workspace, inline profiles).
    for unset in (
        "BUCKETSCRIBE_SIS_ENDPOINT",
        "BUCKETSCRIBE_DASHSCOPE_WORKSPACE",
        "BUCKETSCRIBE_PROFILES_FILE",
    ):
        assert unset not in defaults, unset

    profiles_file = REPO / ".build" / "test-profiles" / "profiles.json"
    profiles_file.parent.mkdir(parents=True, exist_ok=True)
    large = [{"name": f"team-{i:03d}", "prefix": f"teams/{i:03d}/", "provider": "sis"} for i in range(80)]
    profiles_file.write_text(json.dumps(large), encoding="utf-8")
    assert len(profiles_file.read_bytes()) > LAMBDA_ENVIRONMENT_LIMIT_BYTES
    relative = profiles_file.relative_to(REPO).as_posix()
    params = [
        f"profilesFile={relative}",
        "sisRegion=cn-east-3",
        "sisProjectId=0123456789abcdef0123456789abcdef",
        "sisEndpoint=https://sis-ext.cn-east-3.myhuaweicloud.com",
        "sisProperty=chinese_8k_general",
        "dashscopeBaseUrl=https://ws-123.cn-beijing.maas.aliyuncs.com/api/v1",
        "dashscopeWsUrl=wss://ws-123.cn-beijing.maas.aliyuncs.com/api-ws/v1/inference",
        "dashscopeWorkspace=ws-123",
    ]
    env = sls_env(moto_proxy, packaged.canary)
    out_dir = tmp_path / "params"
    run_tool(sls_package_cmd(out_dir, *params), timeout_s=180, env=env)
    template = json.loads((out_dir / "cloudformation-template-update-stack.json").read_text())
    variables = template["Resources"][function_id("submit")]["Properties"]["Environment"]["Variables"]
    assert variables["BUCKETSCRIBE_PROFILES"] == ""  # empty: the settings read the file instead
    assert variables["BUCKETSCRIBE_PROFILES_FILE"] == relative
    assert {
        k: variables[k] for k in variables if k.startswith(("BUCKETSCRIBE_SIS_", "BUCKETSCRIBE_DASHSCOPE_"))
    } == {
        "BUCKETSCRIBE_SIS_REGION": "cn-east-3",
        "BUCKETSCRIBE_SIS_PROJECT_ID": "0123456789abcdef0123456789abcdef",
        "BUCKETSCRIBE_SIS_ENDPOINT": "https://sis-ext.cn-east-3.myhuaweicloud.com",
        "BUCKETSCRIBE_SIS_CREDENTIALS_SECRET_NAME": {"Ref": "SisCredentialsSecret"},
        "BUCKETSCRIBE_DASHSCOPE_BASE_URL": "https://ws-123.cn-beijing.maas.aliyuncs.com/api/v1",
        "BUCKETSCRIBE_DASHSCOPE_WS_URL": "wss://ws-123.cn-beijing.maas.aliyuncs.com/api-ws/v1/inference",
        "BUCKETSCRIBE_DASHSCOPE_WORKSPACE": "ws-123",
        "BUCKETSCRIBE_DASHSCOPE_API_KEY_SECRET_NAME": {"Ref": "DashscopeApiKeySecret"},
    }
    assert environment_bytes(variables) <= LAMBDA_ENVIRONMENT_LIMIT_BYTES
    with zipfile.ZipFile(out_dir / "bucketscribe.zip") as archive:
        # Lambda runs the function in /var/task, where the zip is unpacked: the relative path holds.
        assert json.loads(archive.read(relative)) == large

    # The settings the functions build from that environment read the profiles from the file.
    from bucketscribe.providers.registry import load_profiles
    from bucketscribe.settings import Settings

    settings = Settings(profiles=variables["BUCKETSCRIBE_PROFILES"], profiles_file=profiles_file)
    chosen = load_profiles(settings.raw_profiles())
    assert [p.name for p in chosen.profiles] == [p["name"] for p in large]

    # A region that serves none of the models stops packaging.
    refused = subprocess.run(
        sls_package_cmd(tmp_path / "singapore", "dashscopeRegion=ap-southeast-1"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert refused.returncode != 0 and "Value not found" in refused.stdout + refused.stderr


def test_the_claim_lease_is_shorter_than_the_queues_visibility_timeout(packaged: Packaged) -> None:
    visibility = packaged.props("UploadQueue")["VisibilityTimeout"]
    for name in ("submit", "reconcile"):
        env = packaged.props(function_id(name))["Environment"]["Variables"]
        assert int(env["BUCKETSCRIBE_CLAIM_LEASE_S"]) < int(visibility), name
    submit_env = packaged.props(function_id("submit"))["Environment"]["Variables"]
    # The function reads the queue's real visibility timeout at cold start (and refuses to run on
    # a mismatch): it is told which queue, not a copy of the number.
    assert submit_env["BUCKETSCRIBE_UPLOAD_QUEUE_URL"] == {"Ref": "UploadQueue"}
    reconcile_env = packaged.props(function_id("reconcile"))["Environment"]["Variables"]
    assert reconcile_env["BUCKETSCRIBE_DEAD_LETTER_QUEUE_URL"] == {"Ref": "UploadDeadLetterQueue"}


@pytest.fixture(scope="module")
def packaged_switched(
    packaged: Packaged, moto_proxy: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The template of a package with tracing on and a SIS property, without profiles (one
    `serverless package` for the tests of both switches)."""
    out_dir = tmp_path_factory.mktemp("switched")
    params = ("tracing=Active", "sisProperty=chinese_8k_general")
    run_tool(sls_package_cmd(out_dir, *params), timeout_s=180, env=sls_env(moto_proxy, packaged.canary))
    template: dict[str, Any] = json.loads((out_dir / "cloudformation-template-update-stack.json").read_text())
    return template


def test_without_profiles_the_default_profile_carries_the_sis_property(
    packaged_switched: dict[str, Any],
) -> None:
    submit = packaged_switched["Resources"][function_id("submit")]
    (profile,) = json.loads(submit["Properties"]["Environment"]["Variables"]["BUCKETSCRIBE_PROFILES"])
    assert profile["sis"] == {"property": "chinese_8k_general"}


def test_tracing_is_a_package_time_switch(
    packaged: Packaged, packaged_switched: dict[str, Any], moto_proxy: tuple[str, Path], tmp_path: Path
) -> None:
    env = sls_env(moto_proxy, packaged.canary)
    template = packaged_switched
    xray_policy = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AWSXrayWriteOnlyAccess"}
    for name in HANDLERS:
        function = template["Resources"][function_id(name)]
        assert function["Properties"]["TracingConfig"] == {"Mode": "Active"}
        assert function["Properties"]["Environment"]["Variables"]["POWERTOOLS_TRACE_DISABLED"] == "false"
        role = template["Resources"][role_id(function)]
        assert role["Properties"]["ManagedPolicyArns"] == [xray_policy]

    # A mode the template does not know must stop packaging, not deploy something half-on.
    bogus = subprocess.run(
        sls_package_cmd(tmp_path / "bogus", "tracing=Sometimes"),
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert bogus.returncode != 0
    assert "Cannot resolve variable" in bogus.stdout + bogus.stderr
    assert not (tmp_path / "bogus" / "cloudformation-template-update-stack.json").exists()


# -- storage, queues, tables, secrets ---------------------------------------------------------------


def test_recordings_bucket_is_private_encrypted_and_tls_only(packaged: Packaged) -> None:
    bucket = packaged.props("RecordingsBucket")
    assert bucket["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    sse = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    assert sse["SSEAlgorithm"] in {"AES256", "aws:kms"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    aborts = [
        r["AbortIncompleteMultipartUpload"]
        for r in bucket["LifecycleConfiguration"]["Rules"]
        if "AbortIncompleteMultipartUpload" in r
    ]
    assert aborts == [{"DaysAfterInitiation": 1}]

    policies = [
        res["Properties"]
        for res in packaged.of_type("AWS::S3::BucketPolicy").values()
        if res["Properties"]["Bucket"] == {"Ref": "RecordingsBucket"}
    ]
    assert len(policies) == 1
    denies = [
        st
        for st in policies[0]["PolicyDocument"]["Statement"]
        if st["Effect"] == "Deny" and st.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denies) == 1
    assert denies[0]["Principal"] == "*"
    assert {"Fn::GetAtt": ["RecordingsBucket", "Arn"]} in denies[0]["Resource"]
    assert {"Fn::Join": ["", [{"Fn::GetAtt": ["RecordingsBucket", "Arn"]}, "/*"]]} in denies[0]["Resource"]


def test_uploads_under_the_input_prefix_notify_the_queue(packaged: Packaged) -> None:
    bucket = packaged.resources["RecordingsBucket"]
    queue_configs = bucket["Properties"]["NotificationConfiguration"]["QueueConfigurations"]
    assert queue_configs == [
        {
            "Event": "s3:ObjectCreated:*",
            "Queue": {"Fn::GetAtt": ["UploadQueue", "Arn"]},
            "Filter": {"S3Key": {"Rules": [{"Name": "prefix", "Value": "incoming/"}]}},
        }
    ]
    # S3 checks it may send to the queue when the notification is saved.
    assert "UploadQueuePolicy" in _as_list(bucket["DependsOn"])
    statement = next(
        st
        for st in packaged.props("UploadQueuePolicy")["PolicyDocument"]["Statement"]
        if st["Effect"] == "Allow"
    )
    assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert "aws:SourceArn" in statement["Condition"]["ArnEquals"]
    assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    # The policy names the bucket by its fixed name, never by Ref (that would be a cycle).
    assert "RecordingsBucket" not in json.dumps(statement["Condition"])


def test_upload_queue_has_a_dead_letter_queue_and_an_alarm(packaged: Packaged) -> None:
    queue = packaged.props("UploadQueue")
    dlq_id = queue["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == 5
    dlq = packaged.props(dlq_id)
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True
    assert dlq["SqsManagedSseEnabled"] is True
    submit_timeout = packaged.props(function_id("submit"))["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * submit_timeout

    alarms = [
        a["Properties"]
        for a in packaged.of_type("AWS::CloudWatch::Alarm").values()
        if a["Properties"]["Dimensions"]
        == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id, "QueueName"]}}]
    ]
    assert len(alarms) == 1
    assert alarms[0]["Threshold"] == 0
    assert alarms[0]["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarms[0]["MetricName"] == "ApproximateNumberOfMessagesVisible"


def test_jobs_table_indexes_what_the_adapter_queries_and_expires_old_jobs(packaged: Packaged) -> None:
    from bucketscribe.clouds.aws.job_store import jobs_table_definition

    jobs = packaged.props("JobsTable")
    local = jobs_table_definition("jobs")  # what the local stack and the tests create
    assert jobs["BillingMode"] == local["BillingMode"] == "PAY_PER_REQUEST"
    assert jobs["KeySchema"] == local["KeySchema"]
    indexes = {i["IndexName"]: i["KeySchema"] for i in jobs["GlobalSecondaryIndexes"]}
    assert indexes == {i["IndexName"]: i["KeySchema"] for i in local["GlobalSecondaryIndexes"]}
    assert indexes["by_state_next_check"] == [
        {"AttributeName": "open_state", "KeyType": "HASH"},
        {"AttributeName": "next_check_at", "KeyType": "RANGE"},
    ]
    assert {i["Projection"]["ProjectionType"] for i in jobs["GlobalSecondaryIndexes"]} == {"ALL"}
    types = {a["AttributeName"]: a["AttributeType"] for a in jobs["AttributeDefinitions"]}
    assert types == {a["AttributeName"]: a["AttributeType"] for a in local["AttributeDefinitions"]}
    assert jobs["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert jobs["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert jobs["SSESpecification"]["SSEEnabled"] is True


def test_secrets_are_generated_or_empty_never_written_in_the_template(packaged: Packaged) -> None:
    secrets_by_id = packaged.of_type("AWS::SecretsManager::Secret")
    assert set(secrets_by_id) == {
        "CallbackSecret",
        "StatusApiTokenSecret",
        "PushTokenSecret",
        "SisCredentialsSecret",
        "DashscopeApiKeySecret",
        "UrlSignerSecret",
        "WebhookSecret",
    }
    # Named under the prefix the roles may read (a profile's own webhook secret shares it).
    assert secrets_by_id["WebhookSecret"]["Properties"]["Name"] == f"bucketscribe-{STAGE}-webhook-default"
    for secret_id, secret in secrets_by_id.items():
        assert "SecretString" not in secret["Properties"], secret_id
    assert "GenerateSecretString" in secrets_by_id["CallbackSecret"]["Properties"]
    assert "GenerateSecretString" in secrets_by_id["StatusApiTokenSecret"]["Properties"]
    assert "GenerateSecretString" in secrets_by_id["PushTokenSecret"]["Properties"]


def test_no_secret_from_the_environment_reaches_template_or_zips(packaged: Packaged) -> None:
    canary = packaged.canary.encode()
    artifacts = sorted(packaged.out_dir.iterdir())
    assert {p.name for p in artifacts} >= {
        "bucketscribe.zip",
        "core.zip",
        "cloudformation-template-update-stack.json",
    }
    for artifact in artifacts:
        if artifact.suffix == ".zip":
            with zipfile.ZipFile(artifact) as archive:
                for member in archive.namelist():
                    assert canary not in archive.read(member), f"{artifact.name}:{member}"
        else:
            assert canary not in artifact.read_bytes(), artifact.name


# -- artifacts --------------------------------------------------------------------------------------


def test_function_zip_holds_the_handlers_and_nothing_else(packaged: Packaged) -> None:
    with zipfile.ZipFile(packaged.out_dir / "bucketscribe.zip") as archive:
        names = archive.namelist()
    assert names, "empty function zip"
    assert all(name.startswith("functions/") for name in names), names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
    for handler in HANDLERS.values():
        module_file = handler.rsplit(".", 1)[0] + ".py"
        assert module_file in names, f"{module_file} missing: the handler would fail to import"


def test_layer_zip_holds_the_core_package_and_arm64_wheels(packaged: Packaged) -> None:
    with zipfile.ZipFile(packaged.out_dir / "core.zip") as archive:
        names = set(archive.namelist())
        tags = wheel_tags(archive, "python/")
    assert "python/bucketscribe/domain/job.py" in names
    assert "python/bucketscribe/pipeline/submit.py" in names
    # What people run at a terminal is not deployed: the CLI, the dev kit, emulators, tests.
    assert not any(n.startswith("python/bucketscribe/cli/") for n in names)
    assert not any(n.startswith(("python/bucketscribe_local/", "python/tests/")) for n in names)
    assert not any("emulator" in n or "whisper" in n for n in names if n.startswith("python/bucketscribe"))
    assert "python/pydantic/__init__.py" in names
    assert not any(n.startswith("python/pydantic_settings/") for n in names), "settings need only pydantic"
    assert "python/aws_lambda_powertools/__init__.py" in names
    assert not any(n.startswith(("python/boto3/", "python/botocore/")) for n in names), (
        "the runtime has boto3"
    )
    assert not any(n.startswith("python/obs/") for n in names), "OBS belongs to the Huawei deploy"
    extensions = [n for n in names if n.endswith(".so")]
    assert any("pydantic_core" in n for n in extensions)
    wrong_platform = [n for n in extensions if "x86_64" in n or "cpython-311" in n]
    assert wrong_platform == []
    # Every wheel for Lambda's arm64 CPython 3.12 (manylinux_2_28 at most), read from its WHEEL file.
    assert wrong_tags(tags, arch="aarch64", python="3.12") == []
    assert trimmed_leftovers(names) == []
    if packaged.layer_mode == "full":
        assert "python/huaweicloudsdksis/__init__.py" in names
        assert "python/dashscope/__init__.py" in names
        # Media in the cloud as on a laptop: PyAV (with its own FFmpeg) and numpy, as pinned in the
        # lock, in their manylinux_2_28 builds (a manylinux2014-only install falls back to av 14).
        assert {"av-18.1.0", "numpy-2.4.6"} <= tags.keys()
        assert any(tag.endswith("manylinux_2_28_aarch64") for tag in tags["av-18.1.0"])
        assert any(n.startswith("python/av.libs/libavcodec") for n in names)
        assert server_frameworks_in(names, "python/") == []
        layer_bytes = unpacked_bytes(packaged.out_dir / "core.zip")
        code_bytes = unpacked_bytes(packaged.out_dir / "bucketscribe.zip")
        assert layer_bytes + code_bytes < LAMBDA_UNZIPPED_LIMIT_BYTES
        zipped = (packaged.out_dir / "core.zip").stat().st_size
        print(
            f"Lambda layer: {zipped / 2**20:.1f} MiB zipped, {layer_bytes / 2**20:.1f} MiB unpacked "
            f"(limit {LAMBDA_UNZIPPED_LIMIT_BYTES / 2**20:.0f} MiB with the function code)"
        )


# -- the layer really serves the handlers -------------------------------------------------------

# Runs in a fresh interpreter with -I -S: only the layer, the runtime's boto3 and the function
# zip's root are importable, as on Lambda (/opt/python, the runtime, /var/task).
IMPORT_PROBE = """
import importlib, json, sys, time
sys.path[:0] = sys.argv[1:4]
started = time.perf_counter()
module = importlib.import_module(sys.argv[4])
elapsed_ms = (time.perf_counter() - started) * 1000
import bucketscribe
print(json.dumps({"handler": callable(getattr(module, "handler", None)),
                  "import_ms": round(elapsed_ms), "core": bucketscribe.__file__}))
"""


@pytest.mark.parametrize("function", sorted(HANDLERS))
def test_handler_imports_from_the_layer_alone(
    packaged: Packaged, host_layer: HostLayer, function: str, tmp_path: Path
) -> None:
    module_name = HANDLERS[function].rsplit(".", 1)[0].replace("/", ".")
    task_dir = tmp_path / "task"  # what Lambda unpacks the function zip into
    with zipfile.ZipFile(packaged.out_dir / "bucketscribe.zip") as archive:
        archive.extractall(task_dir)
    paths = [str(host_layer.site_dir), str(host_layer.runtime_dir), str(task_dir)]
    done = subprocess.run(
        host_layer.command("-c", IMPORT_PROBE, *paths, module_name),
        cwd=task_dir,
        env=lambda_env(packaged, function),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    where = f"CPython {host_layer.python_version}, {host_layer.arch}"
    print(f"{function}: cold import {result['import_ms']} ms ({where})")
    assert result["handler"] is True
    assert Path(result["core"]).is_relative_to(host_layer.site_dir), "bucketscribe must come from the layer"


def test_the_layer_serves_media_and_both_providers_without_server_frameworks(
    host_layer: HostLayer, tmp_path: Path
) -> None:
    """What the functions import at run time (PyAV, numpy, the SIS SDK, dashscope's ASR classes)
    comes from the layer, and importing dashscope there pulls in no server framework."""
    paths = [str(host_layer.site_dir), str(host_layer.runtime_dir)]
    done = subprocess.run(
        host_layer.command(
            "-c", RUNTIME_PROBE, json.dumps(paths), json.dumps([]), json.dumps(list(SERVER_FRAMEWORKS))
        ),
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for module, path in result["files"].items():
        assert path is not None and Path(path).is_relative_to(host_layer.site_dir), (module, path)
    assert (result["av"], result["numpy"]) == ("18.1.0", "2.4.6")
    # What routing writes: 16-bit PCM and Opus; what uploads commonly hold, decoded.
    assert result["encoders"]["pcm_s16le"] and result["encoders"]["libopus"], result["encoders"]
    assert all(result["decoders"].values()), result["decoders"]
    assert result["server_frameworks"] == []


def test_cfn_lint_accepts_the_templates(packaged: Packaged) -> None:
    templates = [
        str(packaged.out_dir / "cloudformation-template-update-stack.json"),
        str(packaged.out_dir / "cloudformation-template-create-stack.json"),
    ]
    lint = subprocess.run(
        [sys.executable, "-c", "import sys; from cfnlint.runner import main; sys.exit(main())", *templates],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert lint.returncode == 0, lint.stdout + lint.stderr

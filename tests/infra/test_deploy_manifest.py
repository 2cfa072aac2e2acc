"""Both deploys wire what infra/functions.toml lists: the same functions, handlers, limits,
triggers, prefixes, environment variable names, secrets and object access.

serverless.yml (with infra/resources/*.yml) and infra/huawei/*.tf are read as written, offline;
a change to one deploy that the manifest and the other deploy do not share fails here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.infra.deploy_sources import (
    Serverless,
    Tagged,
    evaluate_condition,
    manifest,
    reference,
    render_policy,
    serverless,
    terraform,
)

pytestmark = pytest.mark.infra

FUNCTIONS = sorted(manifest()["functions"])
# FunctionGraph's own default for max_instance_num, used where the manifest sets no limit.
FUNCTIONGRAPH_DEFAULT_INSTANCES = 400
# Object access as key patterns, one per name the manifest uses in reads/writes.
ACCESS_PATTERNS = {
    "input_prefix": "{input_prefix}*",
    "output_prefix": "{output_prefix}*",
    # What is made for a provider (audio copied or re-encoded, the parts of a split upload) and
    # a part's transcript kept for the merge: <key>.<id>[.part-NN].speech.<ext>[.transcript.json]
    "speech_tracks": "{output_prefix}*.speech.*",
    "error_reports": "{output_prefix}*.error.json",
    "failed_invocations": "{failed_invocations_prefix}*",
}


def listed(function: str) -> dict[str, Any]:
    return dict(manifest()["functions"][function])


def expected_patterns(names: list[str]) -> set[str]:
    defaults = manifest()["defaults"]
    return {ACCESS_PATTERNS[name].format(**defaults) for name in names}


def secrets_on(cloud: str, names: list[str] | None = None) -> set[str]:
    """The manifest's secrets (or those of ``names``) that exist on ``cloud``."""
    secrets = manifest()["secrets"]
    return {
        name
        for name in (names if names is not None else secrets)
        if cloud in secrets[name].get("clouds", ["aws", "huawei"])
    }


def huawei_access(spec: dict[str, Any], kind: str) -> list[str]:
    """Object access on Huawei Cloud: what both clouds share plus the Huawei-only part."""
    return list(spec[kind]) + list(spec.get(f"huawei_{kind}", []))


def secret_logical_id(secret: str) -> str:
    """``sis_credentials`` → ``SisCredentialsSecret`` (infra/resources/secrets.yml)."""
    return "".join(part.capitalize() for part in secret.split("_")) + "Secret"


def aws_secret_grant(secret: str) -> Tagged:
    """What a role names to read ``secret``: the secret itself, or for a secret named by prefix
    (the webhooks': the deployment's and any a profile names) every secret of that prefix."""
    prefix = manifest()["secrets"][secret].get("name_prefix")
    if prefix is None:
        return Tagged("Ref", secret_logical_id(secret))
    return Tagged(
        "Sub",
        "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:"
        f"${{self:service}}-${{sls:stage}}-{prefix}*",
    )


# -- the manifest itself ------------------------------------------------------------------------


def test_the_manifest_is_consistent() -> None:
    data = manifest()
    environment = data["environment"]
    names = environment["both"] + environment["aws_only"] + environment["huawei_only"]
    assert len(names) == len(set(names)), "an environment variable is listed twice"
    for name, secret in data["secrets"].items():
        clouds = secret.get("clouds", ["aws", "huawei"])
        assert set(clouds) <= {"aws", "huawei"} and clouds, name
        shared_by = "both" if len(clouds) == 2 else f"{clouds[0]}_only"
        assert secret["setting"] in environment[shared_by], name
    for function in FUNCTIONS:
        spec = listed(function)
        assert set(spec["secrets"]) <= set(data["secrets"]), function
        access = {name for kind in ("reads", "writes", "deletes") for name in huawei_access(spec, kind)}
        assert access <= set(ACCESS_PATTERNS), function
        own = spec["environment"] + spec["aws_environment"] + spec["huawei_environment"]
        assert not set(own) & set(names), function
    defaults = data["defaults"]
    for prefix in ("output_prefix", "failed_invocations_prefix"):
        assert not defaults[prefix].startswith(defaults["input_prefix"]), f"{prefix} would trigger submit"


# -- AWS ----------------------------------------------------------------------------------------


def aws_role(config: Serverless, function: str) -> dict[str, Any]:
    role = config.function(function)["role"]
    assert isinstance(role, Tagged) and role.tag == "Sub", role
    match = re.fullmatch(r"\$\{(\w+)\.Arn\}", role.value)
    assert match, role
    return dict(config.resources[match.group(1)])


def aws_grants(config: Serverless, function: str) -> dict[str, list[Any]]:
    """Action → resources over every Allow statement of the function's role."""
    grants: dict[str, list[Any]] = {}
    for policy in aws_role(config, function)["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            for action in actions:
                grants.setdefault(action, []).extend(resources)
    return grants


def aws_key_patterns(config: Serverless, resources: list[Any]) -> set[str]:
    """``!Join ['', [!GetAtt RecordingsBucket.Arn, '/${param:inputPrefix}*']]`` → ``incoming/*``."""
    patterns = set()
    for resource in resources:
        assert isinstance(resource, Tagged) and resource.tag == "Join", resource
        bucket, suffix = resource.value[1]
        assert bucket == Tagged("GetAtt", "RecordingsBucket.Arn"), resource
        patterns.add(config.resolve_param(suffix).removeprefix("/"))
    return patterns


@pytest.mark.parametrize("function", FUNCTIONS)
def test_aws_functions_match_the_manifest(function: str) -> None:
    config, spec = serverless(), listed(function)
    assert sorted(config.config["functions"]) == FUNCTIONS
    defined = config.function(function)
    assert defined["handler"] == spec["aws_handler"]
    assert defined["timeout"] == spec["timeout_s"]
    assert defined.get("memorySize", config.config["provider"]["memorySize"]) == spec["memory_mb"]
    both = manifest()["environment"]
    assert config.environment(function) == set(
        both["both"] + both["aws_only"] + spec["environment"] + spec["aws_environment"]
    )


def test_aws_triggers_match_the_manifest() -> None:
    config = serverless()
    for function in FUNCTIONS:
        trigger, events = listed(function)["trigger"], config.function(function)["events"]
        if trigger["kind"] == "upload":
            (event,) = events
            assert event["sqs"]["arn"] == Tagged("GetAtt", "UploadQueue.Arn")
            concurrency = config.resolve_param(event["sqs"]["maximumConcurrency"])
            assert int(concurrency) == listed(function)["max_concurrency"]
            notifications = config.resources["RecordingsBucket"]["Properties"]["NotificationConfiguration"]
            (queue,) = notifications["QueueConfigurations"]
            assert queue["Event"] == f"s3:{trigger['event']}:*"
            assert queue["Queue"] == Tagged("GetAtt", "UploadQueue.Arn")
            (rule,) = queue["Filter"]["S3Key"]["Rules"]
            assert rule["Name"] == "prefix"
            assert config.resolve_param(rule["Value"]) == manifest()["defaults"][trigger["prefix"]]
        elif trigger["kind"] == "http":
            routes = {f"{e['http']['method'].upper()} /{e['http']['path']}" for e in events}
            assert routes == set(trigger["routes"])
            assert len(events) == len(trigger["routes"])
        else:
            (event,) = events
            assert event["schedule"]["rate"] == f"rate({trigger['every_minutes']} minutes)"
            assert event["schedule"]["enabled"] is True
            assert_aws_schedule_concurrency(config, function)


def assert_aws_schedule_concurrency(config: Serverless, function: str) -> None:
    """A scheduled function's cap: reserved concurrency, or, where the manifest says "opt-in", none
    unless the stack parameter asks (a fresh account refuses any reservation)."""
    spec = listed(function)
    reserved = config.function(function).get("reservedConcurrency")
    if spec.get("aws_max_concurrency") != "opt-in":
        assert reserved == spec["max_concurrency"]
        return
    assert reserved is not None
    condition, value, otherwise = reserved["Fn::If"]
    assert otherwise == Tagged("Ref", "AWS::NoValue")
    assert isinstance(value, Tagged) and value.tag == "Ref"
    parameter = config.parameters[value.value]
    default = config.resolve_param(parameter["Default"])
    assert default == "", "no reservation unless asked for"

    def reserves(setting: str) -> bool | str:
        assert re.fullmatch(parameter["AllowedPattern"], setting), setting
        return evaluate_condition(config.conditions[condition], {value.value: setting})

    # Empty and 0 both leave the property out: ReservedConcurrentExecutions 0 would throttle it all.
    assert (reserves(default), reserves("0"), reserves(str(spec["max_concurrency"]))) == (False, False, True)


@pytest.mark.parametrize("function", FUNCTIONS)
def test_aws_roles_grant_the_listed_secrets_and_prefixes(function: str) -> None:
    config, spec = serverless(), listed(function)
    grants = aws_grants(config, function)
    secrets = grants["secretsmanager:GetSecretValue"]
    assert set(secrets) == {aws_secret_grant(s) for s in secrets_on("aws", spec["secrets"])}
    assert aws_key_patterns(config, grants.get("s3:GetObject", [])) == expected_patterns(spec["reads"])
    assert aws_key_patterns(config, grants["s3:PutObject"]) == expected_patterns(spec["writes"])
    assert aws_key_patterns(config, grants.get("s3:DeleteObject", [])) == expected_patterns(spec["deletes"])
    assert ("s3:ListBucket" in grants) == spec["lists_bucket"]


def test_aws_generates_exactly_the_generated_secrets() -> None:
    config = serverless()
    for name in secrets_on("aws"):
        secret = manifest()["secrets"][name]
        properties = config.resources[secret_logical_id(name)]["Properties"]
        assert ("GenerateSecretString" in properties) == secret["generated"], name
        assert "SecretString" not in properties, name
        setting = config.config["provider"]["environment"][secret["setting"]]
        assert setting == Tagged("Ref", secret_logical_id(name)), name
        if "name_prefix" in secret:
            # Named so that the prefix the roles may read covers it.
            assert properties["Name"] == f"${{self:service}}-${{sls:stage}}-{secret['name_prefix']}default"


def test_every_function_publishes_job_events_to_the_deploys_bus_only() -> None:
    events, config, tf = manifest()["events"], serverless(), terraform()
    bus = Tagged(
        "Sub", "arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:event-bus/${param:eventBusName}"
    )
    assert config.config["provider"]["environment"]["BUCKETSCRIBE_EVENT_BUS_NAME"] == "${param:eventBusName}"
    assert reference(tf.locals["environment"]["BUCKETSCRIBE_SMN_TOPIC_URN"]) == (
        "huaweicloud_smn_topic.job_events.topic_urn"
    )
    values = huawei_policy_values()
    for function in FUNCTIONS:
        grants = aws_grants(config, function)
        assert grants[events["aws_action"]] == [bus], function
        assert not [
            action for action in grants if action.startswith("events:") and action != events["aws_action"]
        ]
        huawei = huawei_grants(render_policy(function, values))
        assert huawei[events["huawei_action"]] == {f"smn:*:*:topic:{values['job_events_topic']}"}, function
        assert [action for action in huawei if action.startswith("smn:")] == [events["huawei_action"]]


def test_aws_url_signer_reads_what_is_presigned_and_only_through_presigned_urls() -> None:
    """The URL signer user (its key signs the providers' media URLs) may read the manifest's
    url_signer prefixes and nothing else, with a presigned URL only; its key is never the stack's."""
    config = serverless()
    user = config.resources["UrlSignerUser"]
    assert user["Type"] == "AWS::IAM::User"
    assert set(user["Properties"]) == {"Path", "Policies"}, "no console password, no managed policies"
    (policy,) = user["Properties"]["Policies"]
    reads: list[Any] = []
    for statement in policy["PolicyDocument"]["Statement"]:
        assert statement["Effect"] == "Allow"
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert set(actions) <= {"s3:GetObject", "s3:GetObjectVersion"}, actions
        assert statement["Condition"] == {
            "StringEquals": {"s3:authType": "REST-QUERY-STRING", "s3:signatureversion": "AWS4-HMAC-SHA256"}
        }
        reads.append(statement["Resource"])
    assert aws_key_patterns(config, reads) == expected_patterns(manifest()["url_signer"]["reads"])
    # Its key is made by the operator (deploy.md): CloudFormation never holds it.
    assert not [r for r in config.resources.values() if r["Type"] == "AWS::IAM::AccessKey"]
    assert config.config["provider"]["environment"]["BUCKETSCRIBE_RECORDINGS_BUCKET"] == Tagged(
        "Ref", "RecordingsBucket"
    )


# -- Huawei Cloud -------------------------------------------------------------------------------


@pytest.mark.parametrize("function", FUNCTIONS)
def test_huawei_functions_match_the_manifest(function: str) -> None:
    tf, spec = terraform(), listed(function)
    assert sorted(tf.locals["functions"]) == FUNCTIONS
    defined = tf.locals["functions"][function]
    assert defined["handler"] == spec["huawei_handler"]
    assert defined["timeout_s"] == spec["timeout_s"]
    assert defined["memory_mb"] == spec["memory_mb"]
    assert defined["max_concurrency"] == spec.get("max_concurrency", FUNCTIONGRAPH_DEFAULT_INSTANCES)
    assert sorted(tf.locals["function_environment"][function]) == sorted(
        spec["environment"] + spec["huawei_environment"]
    )
    both = manifest()["environment"]
    assert set(tf.locals["environment"]) == set(both["both"] + both["huawei_only"])


def test_huawei_function_resource_takes_its_settings_from_the_list() -> None:
    fn = terraform().resource("huaweicloud_fgs_function", "this")
    assert reference(fn["for_each"]) == "local.functions"
    assert reference(fn["handler"]) == "each.value.handler"
    assert reference(fn["timeout"]) == "each.value.timeout_s"
    assert reference(fn["memory_size"]) == "each.value.memory_mb"
    assert reference(fn["max_instance_num"]) == "tostring(each.value.max_concurrency)"
    assert (
        reference(fn["user_data"])
        == "jsonencode({for name, value in merge(local.environment, local.function_environment[each.key])"
        " : name => value if value != null})"
    )


def huawei_function_of(expression: str) -> str:
    match = re.fullmatch(r'\$\{huaweicloud_fgs_function\.this\["(\w+)"\]\.urn\}', expression)
    assert match, expression
    return match.group(1)


def test_huawei_triggers_match_the_manifest() -> None:
    tf = terraform()
    defaults = manifest()["defaults"]
    triggers = {name: listed(name)["trigger"] for name in FUNCTIONS}

    (upload_function,) = [name for name, trigger in triggers.items() if trigger["kind"] == "upload"]
    (obs_trigger,) = tf.resources["huaweicloud_fgs_trigger"].values()
    assert obs_trigger["type"] == "OBS" and obs_trigger["status"] == "ACTIVE"
    assert huawei_function_of(obs_trigger["function_urn"]) == upload_function
    (obs,) = obs_trigger["obs"]
    assert obs["events"] == [triggers[upload_function]["event"]]
    assert obs["bucket_name"] == "${huaweicloud_obs_bucket.recordings.bucket}"
    prefix = triggers[upload_function]["prefix"]
    assert reference(obs["prefix"]) == f"var.{prefix}" and tf.default(prefix) == defaults[prefix]

    (schedule_function,) = [name for name, trigger in triggers.items() if trigger["kind"] == "schedule"]
    (timer,) = tf.resources["huaweicloud_fgs_function_trigger"].values()
    assert timer["type"] == "TIMER" and huawei_function_of(timer["function_urn"]) == schedule_function
    every = re.search(r'schedule\s*=\s*"(\d+)m"', timer["event_data"])
    assert every and int(every.group(1)) == triggers[schedule_function]["every_minutes"]
    assert re.search(r'schedule_type\s*=\s*"Rate"', timer["event_data"])

    (http_function,) = [name for name, trigger in triggers.items() if trigger["kind"] == "http"]
    routes = {f"{route['method']} {route['path']}" for route in tf.locals["routes"].values()}
    assert routes == set(triggers[http_function]["routes"])
    api = tf.resource("huaweicloud_apig_api", "route")
    assert reference(api["for_each"]) == "local.routes"
    (backend,) = api["func_graph"]
    assert huawei_function_of(backend["function_urn"]) == http_function
    assert backend["invocation_type"] == "sync"
    assert backend["timeout"] == listed(http_function)["timeout_s"] * 1000
    publish = tf.resource("huaweicloud_apig_api_publishment", "route")
    assert reference(publish["for_each"]) == "local.routes"


def test_huawei_upload_failures_go_to_the_failure_prefix_after_retries() -> None:
    tf = terraform()
    (config,) = tf.resources["huaweicloud_fgs_async_invoke_configuration"].values()
    uploads = [name for name in FUNCTIONS if listed(name)["trigger"]["kind"] == "upload"]
    assert [huawei_function_of(config["function_urn"])] == uploads
    assert config["max_async_retry_attempts"] == 3
    (failure,) = config["on_failure"]
    assert failure["destination"] == "OBS"
    assert "${var.failed_invocations_prefix}" in failure["param"]
    assert tf.default("failed_invocations_prefix") == manifest()["defaults"]["failed_invocations_prefix"]


def test_huawei_secrets_match_the_manifest() -> None:
    tf = terraform()
    secrets = {name: manifest()["secrets"][name] for name in secrets_on("huawei")}
    generated = {name for name, secret in secrets.items() if secret["generated"]}
    generated_by_terraform = tf.resource("random_password", "generated")["for_each"]
    assert generated_by_terraform.startswith("${toset(")
    assert set(re.findall(r'"(\w+)"', generated_by_terraform)) == generated
    operator = tf.resource("huaweicloud_csms_secret", "operator")
    assert set(operator["for_each"]) == set(secrets) - generated
    assert set(tf.locals["secret_names"]) == set(secrets)
    for name, secret in secrets.items():
        kind = "generated" if secret["generated"] else "operator"
        setting = tf.locals["environment"][secret["setting"]]
        assert setting == f'${{huaweicloud_csms_secret.{kind}["{name}"].name}}', name


def huawei_policy_values() -> dict[str, str]:
    values = dict(manifest()["defaults"], bucket="recordings")
    values.update({f"{name}_secret": f"secret-{name}" for name in manifest()["secrets"]})
    values.update(
        {
            f"{name}_secret_prefix": f"secret-{name}-"
            for name, s in manifest()["secrets"].items()
            if "name_prefix" in s
        }
    )
    values["secrets_kms_key_id"] = "secrets-key"
    values["job_events_topic"] = "job-events"
    return values


def huawei_secret_grant(secret: str) -> str:
    if "name_prefix" in manifest()["secrets"][secret]:
        return f"csms:*:*:secretName:secret-{secret}-*"
    return f"csms:*:*:secretName:secret-{secret}"


def huawei_grants(document: dict[str, Any]) -> dict[str, set[str]]:
    grants: dict[str, set[str]] = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            grants.setdefault(action, set()).update(statement.get("Resource", ["*"]))
    return grants


@pytest.mark.parametrize("function", FUNCTIONS)
def test_huawei_agencies_grant_the_listed_secrets_and_prefixes(function: str) -> None:
    spec = listed(function)
    grants = huawei_grants(render_policy(function, huawei_policy_values()))
    objects = "obs:*:*:object:recordings/"
    reads = {r.removeprefix(objects) for r in grants.get("obs:object:GetObject", set())}
    writes = {r.removeprefix(objects) for r in grants["obs:object:PutObject"]}
    deletes = {r.removeprefix(objects) for r in grants.get("obs:object:DeleteObject", set())}
    assert reads == expected_patterns(huawei_access(spec, "reads"))
    assert writes == expected_patterns(huawei_access(spec, "writes"))
    assert deletes == expected_patterns(huawei_access(spec, "deletes"))
    assert ("obs:bucket:ListBucket" in grants) == spec["lists_bucket"]
    assert grants["csms:secret:getVersion"] == {
        huawei_secret_grant(s) for s in secrets_on("huawei", spec["secrets"])
    }


def test_huawei_url_signer_reads_what_is_presigned_and_nothing_else() -> None:
    tf = terraform()
    user = tf.resource("huaweicloud_identityv5_user", "url_signer")
    assert user["enabled"] is True
    attach = tf.resource("huaweicloud_identityv5_policy_user_attach", "url_signer")
    assert reference(attach["user_id"]) == "huaweicloud_identityv5_user.url_signer.id"
    assert reference(attach["policy_id"]) == "huaweicloud_identityv5_policy.url_signer.id"
    policy = tf.resource("huaweicloud_identityv5_policy", "url_signer")
    assert "policies/url_signer.json" in policy["policy_document"]
    grants = huawei_grants(render_policy("url_signer", huawei_policy_values()))
    assert set(grants) == {"obs:object:GetObject", "obs:object:GetObjectVersion"}
    objects = "obs:*:*:object:recordings/"
    reads = {r.removeprefix(objects) for r in grants["obs:object:GetObject"]}
    assert reads == expected_patterns(manifest()["url_signer"]["reads"])
    # Its key is made by the operator (deploy.md): Terraform's state never holds it.
    assert not {"huaweicloud_identityv5_access_key", "huaweicloud_identity_access_key"} & set(tf.resources)
    assert "huaweicloud_identityv5_user_password" not in tf.resources

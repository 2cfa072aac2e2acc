"""The Huawei Cloud deploy, checked offline: Terraform's registry is out of reach here and in CI.

- python-hcl2 parses infra/huawei/*.tf; the tests below read the parsed resources.
- checkov runs over it with zero failed checks. checkov ships no huaweicloud_* checks, so its
  built-in run alone would pass anything: the project's own checks (infra/huawei/checks) carry
  the policy, and they must fail on a deliberately insecure fixture. checkov pins boto3 < 1.36,
  so it lives in its own venv (.build/checkov-venv), installed by tests/infra/early_builds.py.
- infra/huawei/build_package.py builds the FunctionGraph package; the zip's contents and size are
  checked and a python3.12 imports the handlers from it alone.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.infra.artifacts import (
    RUNTIME_PROBE,
    SERVER_FRAMEWORKS,
    server_frameworks_in,
    trimmed_leftovers,
    wheel_tags,
    wrong_tags,
)
from tests.infra.aws_package import find_python312
from tests.infra.deploy_sources import HUAWEI, REPO, manifest, reference, render_policy, terraform
from tests.infra.early_builds import CHECKOV, FUNCTIONGRAPH_PACKAGE

pytestmark = pytest.mark.infra

CHECKS = HUAWEI / "checks"
INSECURE_FIXTURE = Path(__file__).parent / "fixtures" / "huawei_insecure"
CUSTOM_CHECK_IDS = sorted(
    re.search(r'id: "(CKV2_BSCRIBE_\d+)"', path.read_text(encoding="utf-8")).group(1)
    for path in CHECKS.glob("*.yaml")
)
# FunctionGraph: a code package from OBS may be up to 300 MB zipped and 1.5 GB unpacked
# (https://support.huaweicloud.com/productdesc-functiongraph/functiongraph_01_0150.html).
MAX_ZIPPED_BYTES = 300 * 2**20
MAX_UNPACKED_BYTES = 1500 * 2**20


def _run(
    cmd: list[str], *, timeout_s: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{cmd[0]} did not finish in {timeout_s} s: {exc}")


# -- checkov ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov() -> str:
    """checkov from its own venv (``early_builds``: started when the tests were collected)."""
    return CHECKOV.result()


def run_checkov(checkov: str, directory: Path) -> list[dict[str, Any]]:
    env = {
        **os.environ,
        # Offline: no guideline download from Prisma Cloud, no version check.
        "BC_SKIP_MAPPING": "TRUE",
        "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false",
        "LOG_LEVEL": "ERROR",
    }
    cmd = [checkov, "--directory", str(directory), "--framework", "terraform", "secrets"]
    cmd += ["--external-checks-dir", str(CHECKS), "--output", "json", "--skip-download"]
    done = _run(cmd, timeout_s=300, env=env)
    assert done.returncode in (0, 1), f"checkov exited {done.returncode}:\n{done.stderr[-4000:]}"
    reports = json.loads(done.stdout)
    return [report for report in (reports if isinstance(reports, list) else [reports]) if "results" in report]


def test_checkov_finds_nothing_to_fix_in_the_huawei_deploy(checkov: str) -> None:
    reports = run_checkov(checkov, HUAWEI)
    by_type = {report["check_type"]: report for report in reports}
    terraform_report = by_type["terraform"]
    assert terraform_report["summary"]["parsing_errors"] == 0
    assert terraform_report["summary"]["resource_count"] >= 30
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']})"
        for r in reports
        for c in r["results"]["failed_checks"]
    ]
    assert failed == [], "\n".join(failed)
    passed_ids = {c["check_id"] for c in terraform_report["results"]["passed_checks"]}
    assert set(CUSTOM_CHECK_IDS) <= passed_ids, "a custom check matched no resource: it checked nothing"
    for skipped in terraform_report["results"]["skipped_checks"]:
        assert skipped.get("suppress_comment", "").strip(), f"suppression without a reason: {skipped}"


def test_the_custom_checks_fail_on_an_insecure_configuration(checkov: str) -> None:
    (report,) = [r for r in run_checkov(checkov, INSECURE_FIXTURE) if r["check_type"] == "terraform"]
    failed_ids = {c["check_id"] for c in report["results"]["failed_checks"]}
    assert failed_ids == set(CUSTOM_CHECK_IDS)


# -- what the Terraform says ----------------------------------------------------------------------


def test_no_credentials_in_the_provider_or_the_function_environment() -> None:
    tf = terraform()
    assert set(tf.providers["huaweicloud"]) == {"region"}
    for name, value in tf.locals["environment"].items():
        assert "random_password" not in str(value) and "secret_text" not in str(value), name
    generated = tf.resource("huaweicloud_csms_secret", "generated")
    assert reference(generated["secret_text"]) == "each.value.result"
    operator = tf.resource("huaweicloud_csms_secret", "operator")
    assert set(operator["for_each"].values()) == {"{}", "set-me"}, "operator secrets hold placeholders only"
    (lifecycle,) = operator["lifecycle"]
    assert lifecycle["ignore_changes"] == ["secret_text"]


def test_the_recordings_bucket_is_private_encrypted_versioned_and_kept() -> None:
    bucket = terraform().resource("huaweicloud_obs_bucket", "recordings")
    assert bucket["acl"] == "private" and bucket["encryption"] is True and bucket["versioning"] is True
    # SSE-OBS: presigned GETs for SIS/DashScope need no KMS grant (as SSE-S3 on AWS).
    assert bucket["sse_algorithm"] == "AES256"
    (rule,) = bucket["lifecycle_rule"]
    assert rule["abort_incomplete_multipart_upload"] == [{"days": 1}]
    assert rule["noncurrent_version_expiration"] == [{"days": 30}]
    assert bucket["lifecycle"] == [{"prevent_destroy": True}]
    assert bucket["force_destroy"] is False


def test_every_bucket_refuses_requests_without_tls() -> None:
    tf = terraform()
    for name, policy in tf.resources["huaweicloud_obs_bucket_policy"].items():
        assert "policies/bucket_tls_only.json" in policy["policy"], name
    (statement,) = render_policy("bucket_tls_only", {"bucket": "b"})["Statement"]
    assert statement["Effect"] == "Deny" and statement["Principal"] == {"ID": ["*"]}
    assert statement["Resource"] == ["b", "b/*"]
    assert statement["Condition"] == {"Bool": {"SecureTransport": ["false"]}}
    assert set(tf.resources["huaweicloud_obs_bucket_policy"]) == {"recordings_tls_only", "artifacts_tls_only"}


def test_each_function_acts_as_its_own_agency_and_the_platform_as_another() -> None:
    tf = terraform()
    function = tf.resource("huaweicloud_fgs_function", "this")
    assert reference(function["app_agency"]) == "huaweicloud_identity_agency.function[each.key].name"
    assert reference(function["agency"]) == "huaweicloud_identity_agency.platform.name"
    agencies = tf.resources["huaweicloud_identity_agency"]
    assert set(agencies) == {"function", "platform"}
    for agency in agencies.values():
        assert agency["delegated_domain_name"] == "op_svc_cff"  # FunctionGraph
    assert reference(agencies["function"]["for_each"]) == "local.functions"
    attach = tf.resource("huaweicloud_identityv5_policy_agency_attach", "function")
    assert reference(attach["agency_id"]) == "huaweicloud_identity_agency.function[each.key].id"
    assert reference(attach["policy_id"]) == "huaweicloud_identityv5_policy.function[each.key].id"


def _statements(name: str) -> list[dict[str, Any]]:
    values = dict(manifest()["defaults"], bucket="b")
    values.update({f"{secret}_secret": secret for secret in manifest()["secrets"]})
    values.update({f"{secret}_secret_prefix": f"{secret}-" for secret in manifest()["secrets"]})
    values["secrets_kms_key_id"] = "k"
    values["job_events_topic"] = "t"
    statements: list[dict[str, Any]] = render_policy(name, values)["Statement"]
    return statements


@pytest.mark.parametrize("function", sorted(manifest()["functions"]))
def test_function_policies_name_actions_and_resources(function: str) -> None:
    for statement in _statements(function):
        assert all("*" not in action for action in statement["Action"]), statement
        for resource in statement["Resource"]:
            if statement["Action"] == ["kms:cmk:decryptDataKey"]:
                # The deployment's own key for its secrets (secrets.tf), not every key of the account.
                assert resource == "kms:*:*:KeyId:k"
            else:
                # Objects and the bucket, secrets by name (the webhooks' by their prefix), the topic.
                assert re.fullmatch(
                    r"(obs:\*:\*:(object:b/.+|bucket:b)|csms:\*:\*:secretName:(\w+|webhook-\*)|smn:\*:\*:topic:t)",
                    resource,
                ), resource


def test_the_secrets_use_the_deployments_key_and_only_it_may_be_used_to_decrypt() -> None:
    tf = terraform()
    for kind in ("generated", "operator"):
        secret = tf.resource("huaweicloud_csms_secret", kind)
        assert reference(secret["kms_key_id"]) == "huaweicloud_kms_key.secrets.id", kind
    iam_values = tf.locals["policy_values"]
    assert reference(iam_values["secrets_kms_key_id"]) == "huaweicloud_kms_key.secrets.id"
    for path in (HUAWEI / "policies").glob("*.json"):
        assert "KeyId:*" not in path.read_text(encoding="utf-8"), path.name


def test_the_platform_agency_may_only_attach_to_the_vpc_and_write_failed_invocations() -> None:
    (vpc,) = json.loads((HUAWEI / "policies" / "platform_vpc.json").read_text(encoding="utf-8"))["Statement"]
    assert sorted(vpc["Action"]) == sorted(
        ["vpc:vpcs:get", "vpc:subnets:get", "vpc:ports:get", "vpc:ports:create", "vpc:ports:delete"]
    )
    (failures,) = _statements("platform_failures")
    assert failures["Action"] == ["obs:object:PutObject"]
    assert failures["Resource"] == [
        f"obs:*:*:object:b/{manifest()['defaults']['failed_invocations_prefix']}*"
    ]


def test_the_api_is_https_on_a_tls12_domain_and_the_handler_authenticates() -> None:
    tf = terraform()
    api = tf.resource("huaweicloud_apig_api", "route")
    assert api["request_protocol"] == "HTTPS" and api["type"] == "Public"
    # As on AWS: no gateway auth, the handler checks tokens/signatures and caps the body.
    assert api["security_authentication"] == "NONE"
    domain = tf.resource("huaweicloud_apig_group_domain_associate", "callbacks")
    assert domain["min_ssl_version"] == "TLSv1.2" and domain["ingress_http_port"] == -1
    assert tf.locals["environment"]["BUCKETSCRIBE_CALLBACK_BASE_URL"] == "https://${var.callback_domain}"
    # The domain's certificate is bound by Terraform, after the domain is on the group.
    binding = tf.resource("huaweicloud_apig_certificate_batch_domains_associate", "callbacks")
    assert reference(binding["certificate_id"]) == "var.callback_certificate_id"
    assert binding["verify_disabled_domain_names"] == ["${var.callback_domain}"]
    assert binding["depends_on"] == ["${huaweicloud_apig_group_domain_associate.callbacks}"]


def test_functions_log_to_one_group_with_a_stream_each() -> None:
    tf = terraform()
    group = tf.resource("huaweicloud_lts_group", "functions")
    assert reference(group["ttl_in_days"]) == "var.log_retention_days"
    assert 1 <= tf.default("log_retention_days") <= 365
    stream = tf.resource("huaweicloud_lts_stream", "function")
    assert reference(stream["for_each"]) == "local.functions"
    function = tf.resource("huaweicloud_fgs_function", "this")
    assert reference(function["log_stream_id"]) == "huaweicloud_lts_stream.function[each.key].id"


# -- the code package ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def functiongraph_package() -> Path:
    """infra/huawei/build_package.py's zip (``early_builds``: started when the tests were collected)."""
    return FUNCTIONGRAPH_PACKAGE.result()


def test_the_package_holds_handlers_at_its_root_and_every_dependency(functiongraph_package: Path) -> None:
    with zipfile.ZipFile(functiongraph_package) as archive:
        names = set(archive.namelist())
        unpacked = sum(info.file_size for info in archive.infolist())
        tags = wheel_tags(archive)
    handlers = {f"{spec['huawei_handler'].rsplit('.', 1)[0]}.py" for spec in manifest()["functions"].values()}
    # FunctionGraph imports the handler modules from the root; of functions/, only they go there.
    assert handlers <= names
    lambda_handlers = {path.name for path in (REPO / "functions").glob("*.py")} - handlers - {"__init__.py"}
    assert lambda_handlers and not lambda_handlers & names
    for required in (
        "bucketscribe/domain/job.py",
        "bucketscribe/clouds/huawei/secrets.py",
        "pydantic/__init__.py",
        "aws_lambda_powertools/__init__.py",
        "boto3/__init__.py",  # the job store talks to GeminiDB through it; FunctionGraph ships none
        "obs/__init__.py",
        "crcmod/__init__.py",
        "huaweicloudsdksis/__init__.py",
        "huaweicloudsdkcsms/__init__.py",
        "dashscope/__init__.py",
    ):
        assert required in names, required
    extensions = [n for n in names if n.endswith(".so")]
    assert any("pydantic_core" in n and "cpython-312-x86_64" in n for n in extensions)
    assert [n for n in extensions if "cpython-311" in n or "aarch64" in n] == []
    assert not any(n.startswith("crcmod/") and n.endswith(".so") for n in names), "crcmod stays pure Python"
    assert trimmed_leftovers(names) == []
    assert not any(n.startswith(("moto/", "faster_whisper/")) for n in names)
    # Media as on a laptop (PyAV with its FFmpeg, numpy), from the lock's manylinux_2_28 wheels;
    # dashscope without the server frameworks its metadata declares.
    assert {"av-18.1.0", "numpy-2.4.6"} <= tags.keys()
    assert any(tag.endswith("manylinux_2_28_x86_64") for tag in tags["av-18.1.0"])
    # Built wheels (esdk-obs-python from its sdist) are pure Python; crcmod has no dist-info.
    assert wrong_tags(tags, arch="x86_64", python="3.12") == []
    assert server_frameworks_in(names) == []
    assert functiongraph_package.stat().st_size < MAX_ZIPPED_BYTES and unpacked < MAX_UNPACKED_BYTES
    zipped_mib, unpacked_mib = functiongraph_package.stat().st_size / 2**20, unpacked / 2**20
    print(f"FunctionGraph package: {zipped_mib:.1f} MiB zipped, {unpacked_mib:.1f} MiB unpacked")


HANDLER_PROBE = """
import importlib, json, sys
sys.path[:0] = [sys.argv[1]]
handlers = {name: callable(getattr(importlib.import_module(name), "handler", None)) for name in sys.argv[2:]}
from obs import ObsClient
import crcmod, boto3, huaweicloudsdkcsms.v1, huaweicloudsdksis.v1, bucketscribe
crc_extension = sys.modules["crcmod.crcmod"]._usingExtension
print(json.dumps({"handlers": handlers, "core": bucketscribe.__file__, "crc": crc_extension}))
"""


# FunctionGraph: all environment variables of a function, keys and values, at most 4096 characters
# (https://support.huaweicloud.com/usermanual-functiongraph/functiongraph_01_0154.html).
FUNCTIONGRAPH_ENVIRONMENT_LIMIT_CHARS = 4096


def tfvars_example() -> dict[str, Any]:
    with (HUAWEI / "terraform.tfvars.example").open(encoding="utf-8") as source:
        return {key: value for key, value in hcl2.load(source).items() if not key.startswith("__")}


def variable_values(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every variable's value: its default, then terraform.tfvars.example, then ``overrides``."""
    tf = terraform()
    values = {name: spec.get("default") for name, spec in tf.variables.items()}
    values.update(tfvars_example())
    values.update(overrides or {})
    return values


def functiongraph_environment(function: str, values: dict[str, Any]) -> dict[str, str]:
    """What user_data gives ``function`` for these variable values: locals.tf's environment with
    each expression worked out as Terraform would (the forms used there; any other fails here),
    and null values left out as functions.tf leaves them out."""
    tf = terraform()
    name = tf.locals["name"].replace("${var.stage}", values["stage"])
    secret_names = {
        key: value.replace("${local.name}", name) for key, value in tf.locals["secret_names"].items()
    }
    endpoints = tf.locals["dashscope_endpoints"]

    def inline_profiles() -> str | None:
        # local.inline_profiles: the variable, else "" beside a profiles file, else the default profile.
        if values["profiles"] is not None:
            return str(values["profiles"])
        if values["profiles_file"] is not None:
            return ""
        default = [
            {"name": "default", "prefix": "", "provider": "sis", "sis": {"property": values["sis_property"]}}
        ]
        return json.dumps(default, separators=(",", ":"))

    def evaluate(expression: str) -> str | None:
        if variable := re.fullmatch(r"var\.(\w+)", expression):
            value = values[variable.group(1)]
            return None if value is None else str(value)
        if secret := re.fullmatch(r'huaweicloud_csms_secret\.\w+\["(\w+)"\]\.name', expression):
            return secret_names[secret.group(1)]
        if expression == "huaweicloud_obs_bucket.recordings.bucket":
            return str(values["bucket_name"])
        if expression == "huaweicloud_smn_topic.job_events.topic_urn":
            # SMN's form of a topic's URN: urn:smn:<region>:<project id>:<topic name>.
            topic = tf.resource("huaweicloud_smn_topic", "job_events")["name"].replace("${local.name}", name)
            return f"urn:smn:{values['region']}:{'0' * 32}:{topic}"
        if expression == "local.inline_profiles":
            return inline_profiles()
        if endpoint := re.fullmatch(
            r"coalesce\(var\.(\w+), local\.dashscope_endpoints\[var\.dashscope_region\]\.(\w+)\)", expression
        ):
            chosen = values[endpoint.group(1)]
            return (
                str(chosen)
                if chosen is not None
                else str(endpoints[values["dashscope_region"]][endpoint.group(2)])
            )
        raise AssertionError(f"this test does not know how Terraform evaluates {expression!r}")

    def render(template: str) -> str | None:
        whole = re.fullmatch(r"\$\{([^}]+)\}", template)
        if whole:
            return evaluate(whole.group(1))
        return re.sub(r"\$\{([^}]+)\}", lambda m: evaluate(m.group(1)) or "", template)

    merged = {**tf.locals["environment"], **tf.locals["function_environment"][function]}
    rendered = {key: render(str(value)) for key, value in merged.items()}
    return {key: value for key, value in rendered.items() if value is not None}


def _functiongraph_environment() -> dict[str, str]:
    """The functions' environment as deployed with the example variables, for an import check."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "RUNTIME_PROJECT_ID": "0" * 32}
    env.update(functiongraph_environment("reconcile", variable_values()))
    return env


@pytest.mark.parametrize("function", sorted(manifest()["functions"]))
def test_the_environment_fits_functiongraphs_4096_characters(function: str) -> None:
    values = variable_values()
    environment = functiongraph_environment(function, values)
    size = sum(len(key) + len(value) for key, value in environment.items())
    room = FUNCTIONGRAPH_ENVIRONMENT_LIMIT_CHARS - (size - len(environment["BUCKETSCRIBE_PROFILES"]))
    print(f"{function}: environment {size} characters; {room} left for inline profiles")
    assert size <= FUNCTIONGRAPH_ENVIRONMENT_LIMIT_CHARS
    assert room >= 2400, room  # docs/deploy.md: about 2.4 KB left for inline profiles
    # Unset settings are left out (the code's defaults apply), and a profiles file empties the
    # inline variable, which the settings then skip for the file.
    assert "BUCKETSCRIBE_PROFILES_FILE" not in environment and "BUCKETSCRIBE_SIS_ENDPOINT" not in environment
    with_file = functiongraph_environment(
        function, variable_values({"profiles_file": "config/profiles.json"})
    )
    assert (with_file["BUCKETSCRIBE_PROFILES"], with_file["BUCKETSCRIBE_PROFILES_FILE"]) == (
        "",
        "config/profiles.json",
    )
    assert environment["BUCKETSCRIBE_DASHSCOPE_BASE_URL"] == "https://dashscope.aliyuncs.com/api/v1"


def test_the_dashscope_region_is_refused_unless_it_serves_the_models() -> None:
    (validation,) = terraform().variables["dashscope_region"]["validation"]
    assert validation["condition"] == '${contains(["cn-beijing"], var.dashscope_region)}'
    assert set(terraform().locals["dashscope_endpoints"]) == {"cn-beijing"}


def test_python312_imports_the_handlers_from_the_package_alone(
    functiongraph_package: Path, tmp_path: Path
) -> None:
    python312 = find_python312()
    if python312 is None:
        pytest.skip(
            "no runnable python3.12 (PATH, pyenv, $BUCKETSCRIBE_PYTHON312): cannot import as FunctionGraph"
        )
    code = tmp_path / "code"  # what FunctionGraph unpacks the package into
    with zipfile.ZipFile(functiongraph_package) as archive:
        archive.extractall(code)
    modules = [spec["huawei_handler"].rsplit(".", 1)[0] for spec in manifest()["functions"].values()]
    done = subprocess.run(
        [python312, "-I", "-c", HANDLER_PROBE, str(code), *modules],
        cwd=code,
        env=_functiongraph_environment(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["handlers"] == dict.fromkeys(modules, True)
    assert Path(result["core"]).is_relative_to(code)
    assert result["crc"] is False  # the pure-Python CRC, as packaged


def test_python312_loads_media_and_both_providers_from_the_package_alone(
    functiongraph_package: Path, tmp_path: Path
) -> None:
    python312 = find_python312()
    if python312 is None:
        pytest.skip(
            "no runnable python3.12 (PATH, pyenv, $BUCKETSCRIBE_PYTHON312): cannot import as FunctionGraph"
        )
    code = tmp_path / "code"
    with zipfile.ZipFile(functiongraph_package) as archive:
        archive.extractall(code)
    extra = ["obs", "huaweicloudsdkcsms.v1", "boto3", "bucketscribe.clouds.huawei.storage"]
    probe_args = [json.dumps([str(code)]), json.dumps(extra), json.dumps(list(SERVER_FRAMEWORKS))]
    done = subprocess.run(
        [python312, "-I", "-S", "-c", RUNTIME_PROBE, *probe_args],
        cwd=code,
        env={"PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    for module, path in result["files"].items():
        assert path is not None and Path(path).is_relative_to(code), (module, path)
    assert (result["av"], result["numpy"]) == ("18.1.0", "2.4.6")
    assert result["encoders"]["pcm_s16le"] and result["encoders"]["libopus"], result["encoders"]
    assert all(result["decoders"].values()), result["decoders"]
    assert result["server_frameworks"] == []

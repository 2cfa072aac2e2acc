"""The AWS deploy as the tests build it: the Serverless Framework package (template and zips) and
the Lambda layer built for this machine, so its extensions load in a local interpreter.

Shared by test_serverless_package.py (what the template and zips hold) and test_artifact_media.py
(the submit function run from the artifacts); the fixtures that build them are in conftest.py.
"""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
STAGE = "ci"
REGION = "eu-central-1"
PROFILES_PARAM = (
    '[{"name": "default", "prefix": "", "provider": "sis"}, {"name": "calls", "prefix": "calls/"}]'
)
HANDLERS = {
    "submit": "functions/submit.handler",
    "callback": "functions/callback.handler",
    "reconcile": "functions/reconcile.handler",
}
# Env vars a careless `${env:...}` in serverless.yml would bake into the template.
CANARY_ENV_VARS = (
    "BUCKETSCRIBE_CALLBACK_SECRET",
    "BUCKETSCRIBE_STATUS_API_TOKEN",
    "BUCKETSCRIBE_SIS_SK",
    "DASHSCOPE_API_KEY",
)
# Lambda's limit for a function's code and all its layers, unzipped
# (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html): 250 MB = 262 144 000 bytes.
LAMBDA_UNZIPPED_LIMIT_BYTES = 262_144_000
# Lambda's limit for all environment variables of a function together: 4 KB.
LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096

Template = dict[str, Any]


@dataclass
class Packaged:
    out_dir: Path
    template: Template
    canary: str
    layer_mode: str
    timings_s: dict[str, float] = field(default_factory=dict)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.template["Resources"]

    def of_type(self, cfn_type: str) -> dict[str, dict[str, Any]]:
        return {name: res for name, res in self.resources.items() if res["Type"] == cfn_type}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id]["Properties"]


def run_tool(cmd: list[str], *, timeout_s: float, env: dict[str, str] | None = None) -> str:
    try:
        done = subprocess.run(
            cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s, check=False
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{cmd[0]} {cmd[1] if len(cmd) > 1 else ''} did not finish in {timeout_s} s: {exc}")
    if done.returncode != 0:
        pytest.fail(f"{' '.join(cmd)} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done.stdout + done.stderr


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def sls_env(moto_proxy: tuple[str, Path], canary: str) -> dict[str, str]:
    proxy_url, ca_cert = moto_proxy
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "AKIDUMMYPACKAGEONLY",
            "AWS_SECRET_ACCESS_KEY": "dummy-secret-for-package-only",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "SLS_TELEMETRY_DISABLED": "1",
            "SLS_NOTIFICATIONS_MODE": "off",
            "SLS_AWS_REQUEST_MAX_RETRIES": "0",
            "HTTPS_PROXY": proxy_url,
            "NODE_EXTRA_CA_CERTS": str(ca_cert),
            **dict.fromkeys(CANARY_ENV_VARS, canary),
        }
    )
    return env


def sls_package_cmd(out_dir: Path, *params: str) -> list[str]:
    cmd = ["npx", "--no-install", "serverless", "package", "--stage", STAGE, "--region", REGION]
    for param in params:
        cmd += ["--param", param]
    return [*cmd, "--package", str(out_dir)]


def function_id(name: str) -> str:
    return f"{name.capitalize()}LambdaFunction"


def role_id(function: dict[str, Any]) -> str:
    role = function["Properties"]["Role"]
    if "Fn::GetAtt" in role:
        return str(role["Fn::GetAtt"][0])
    sub = role["Fn::Sub"]
    assert sub.startswith("${") and sub.endswith(".Arn}"), sub
    return str(sub[2 : -len(".Arn}")])


def stand_in(name: str, value: Any) -> str:
    """A deploy-time reference of the template (``{"Ref": X}``, the callback URL's join) as a
    value that looks like what CloudFormation would put there."""
    if isinstance(value, str):
        return value
    if name == "BUCKETSCRIBE_CALLBACK_BASE_URL":
        return f"https://a1b2c3d4e5.execute-api.{REGION}.amazonaws.com/{STAGE}"
    return f"bucketscribe-{STAGE}-{value['Ref']}"


def lambda_env(packaged: Packaged, function: str) -> dict[str, str]:
    """The function's environment from the template, with stand-ins for deploy-time references."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "AKIDUMMYIMPORTONLY",
        "AWS_SECRET_ACCESS_KEY": "dummy-secret-for-import-only",
        "AWS_LAMBDA_FUNCTION_NAME": f"bucketscribe-{STAGE}-{function}",
    }
    for name, value in packaged.props(function_id(function))["Environment"]["Variables"].items():
        env[name] = stand_in(name, value)
    return env


# -- the layer, built for this machine ----------------------------------------------------------


@dataclass
class HostLayer:
    """The AWS layer built for this machine's CPU and Python, and how to run code from it alone.

    ``python`` runs with ``-I -S``: no site-packages, no user site, no PYTHONPATH, so only the
    standard library and the paths given (layer, runtime SDK, function zip) are importable, as on
    Lambda (/opt/python, the runtime's boto3, /var/task).
    """

    python: str
    python_version: str
    arch: str
    site_dir: Path
    runtime_dir: Path

    def command(self, *args: str) -> list[str]:
        return [self.python, "-I", "-S", *args]


def base_python() -> str:
    """The interpreter behind this venv (the same version and ABI as the one running the tests)."""
    return str(getattr(sys, "_base_executable", None) or sys.executable)


def build_host_layer(out_dir: Path) -> HostLayer:
    """infra/build_layer.sh for this machine (the CPU and CPython running the tests), plus the
    boto3 the Lambda runtime provides, pinned from the FunctionGraph lock."""
    arch = platform.machine()
    python_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    run_tool(
        ["bash", str(REPO / "infra" / "build_layer.sh"), str(out_dir / "layer")],
        timeout_s=300,
        env={
            **os.environ,
            "PYTHON": sys.executable,
            "BUCKETSCRIBE_LAYER_MODE": "full",
            "BUCKETSCRIBE_LAYER_ARCH": arch,
            "BUCKETSCRIBE_LAYER_PYTHON": python_version,
        },
    )
    runtime_dir = out_dir / "runtime"
    run_tool(
        [
            sys.executable,
            "-c",
            RUNTIME_SDK_INSTALL,
            str(REPO / "infra"),
            str(runtime_dir),
            arch,
            python_version,
        ],
        timeout_s=300,
    )
    return HostLayer(base_python(), python_version, arch, out_dir / "layer" / "python", runtime_dir)


# boto3 and what it needs, from the hashed FunctionGraph lock, the way the layer is installed.
RUNTIME_SDK_INSTALL = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import deploy_deps
lock = deploy_deps.read_lock(deploy_deps.FUNCTIONGRAPH_LOCK)
with tempfile.TemporaryDirectory() as scratch:
    wanted = deploy_deps.write_subset(lock, deploy_deps.closure(lock, ["boto3"]), Path(scratch) / "boto3.txt")
    deploy_deps.install_wheels(Path(sys.argv[2]), wanted, arch=sys.argv[3], python_version=sys.argv[4])
"""


def find_python312() -> str | None:
    pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        os.environ.get("BUCKETSCRIBE_PYTHON312"),
        shutil.which("python3.12"),
        *(str(p) for p in sorted(pyenv_root.glob("versions/3.12*/bin/python3.12"), reverse=True)),
    ]
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 12))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except OSError:
            continue
        if probe.stdout.strip() == "True":
            return candidate
    return None

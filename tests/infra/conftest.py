"""Fixtures that build the deploy artifacts once per session: the Serverless package (through
moto's HTTPS proxy) and the Lambda layer built for this machine."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path

import pytest

from tests.infra.aws_package import (
    PROFILES_PARAM,
    REPO,
    HostLayer,
    Packaged,
    free_port,
    run_tool,
    sls_env,
    sls_package_cmd,
)
from tests.infra.early_builds import BY_FIXTURE, DEPLOYED_LAYER, HOST_LAYER, SCRATCH
from tests.waiting import wait_until


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start the slow preparations the collected tests will ask for (``early_builds``)."""
    if session.config.option.collectonly:
        return
    wanted = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    for fixture, build in BY_FIXTURE.items():
        if fixture in wanted:
            build.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    SCRATCH.remove()


def _accepts_connections(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture(scope="session")
def moto_proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """moto's intercepting HTTPS proxy: (proxy URL, CA certificate to trust)."""
    spec = find_spec("moto.moto_proxy")
    assert spec is not None and spec.origin is not None, "moto (with its proxy) is a dev dependency"
    ca_cert = Path(spec.origin).with_name("ca.crt")
    port = free_port()
    log_path = tmp_path_factory.mktemp("moto-proxy") / "proxy.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.proxy", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(
            lambda: proc.poll() is not None or _accepts_connections(port),
            timeout_s=15,
            what="moto's proxy to accept connections",
        )
        assert proc.poll() is None, f"moto proxy exited:\n{log_path.read_text(errors='replace')}"
        yield f"http://127.0.0.1:{port}", ca_cert
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def packaged(tmp_path_factory: pytest.TempPathFactory, moto_proxy: tuple[str, Path]) -> Packaged:
    """infra/build_layer.sh (the deployed arm64 layer) and `serverless package`, as a deploy runs them."""
    if shutil.which("node") is None or shutil.which("npx") is None:
        pytest.skip("node/npx not on PATH: the Serverless Framework cannot run here")
    if not (REPO / "node_modules" / "serverless").is_dir():
        pytest.fail("serverless is not installed: run `npm ci` in the repository root")

    timings: dict[str, float] = {}
    layer_mode = DEPLOYED_LAYER.result()  # tests/infra/early_builds.py: started at collection
    timings["build_layer"] = DEPLOYED_LAYER.seconds or 0.0

    canary = f"canary-{secrets.token_hex(16)}"
    env = sls_env(moto_proxy, canary)
    out_dir = tmp_path_factory.mktemp("sls-package")
    started = time.monotonic()
    run_tool(sls_package_cmd(out_dir, f"profiles={PROFILES_PARAM}"), timeout_s=180, env=env)
    timings["sls_package"] = time.monotonic() - started
    template = json.loads((out_dir / "cloudformation-template-update-stack.json").read_text())
    packaged = Packaged(out_dir, template, canary, layer_mode, timings)
    print(f"infra timings: {timings}")
    return packaged


@pytest.fixture(scope="session")
def host_layer() -> HostLayer:
    """The same layer built for this machine, so a local interpreter can load its extensions."""
    layer = HOST_LAYER.result()  # tests/infra/early_builds.py: started when the tests were collected
    print(f"host layer ({layer.arch}, CPython {layer.python_version}): {HOST_LAYER.seconds:.1f} s")
    return layer

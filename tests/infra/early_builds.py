"""The deploy artifacts' slow preparations, started as soon as the session knows it needs them.

The Lambda layer as deployed (``infra/build_layer.sh``, arm64) and the same layer for this
machine, checkov's own venv (a PyPI install: checkov pins boto3 < 1.36, so it cannot share ours)
and the FunctionGraph code package (``infra/huawei/build_package.py``, python3.12) took ~75, ~65
and ~45 s on a loaded 2-core machine, one after the other, each when the first test that needs it
asked. They wait mostly on the network, so ``conftest.pytest_collection_finish`` starts them once
the tests are collected, and they go on while the earlier tests run (the e2e tests mostly wait on
queues and clocks). A fixture then takes the result, waiting for it if need be; a build that
failed fails the tests that need it, with its output.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from tests.infra.aws_package import HostLayer, build_host_layer, run_tool
from tests.infra.deploy_sources import HUAWEI, REPO

T = TypeVar("T")

CHECKS = HUAWEI / "checks"
CHECKOV_VENV = REPO / ".build" / "checkov-venv"
INSTALL_TIMEOUT_S = 600


class BuildFailed(RuntimeError):
    """A preparation did not succeed (or not in time); its message carries the tool's output."""


def install_checkov() -> str:
    """checkov from its own venv, (re)installed when infra/huawei/checks/requirements.txt changes."""
    requirements = (CHECKS / "requirements.txt").read_text(encoding="utf-8")
    stamp = CHECKOV_VENV / "installed-requirements.txt"
    executable = CHECKOV_VENV / "bin" / "checkov"
    if executable.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == requirements:
        return str(executable)
    run_tool([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], timeout_s=120)
    pip = [
        str(CHECKOV_VENV / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    run_tool([*pip, "-r", str(CHECKS / "requirements.txt")], timeout_s=INSTALL_TIMEOUT_S)
    stamp.write_text(requirements, encoding="utf-8")
    return str(executable)


def build_functiongraph_package(out: Path) -> Path:
    """The FunctionGraph code package, as a deploy builds it, in ``out``."""
    run_tool(
        [sys.executable, str(HUAWEI / "build_package.py"), "--out", str(out)], timeout_s=INSTALL_TIMEOUT_S
    )
    return out / "bucketscribe-functiongraph.zip"


class EarlyBuild(Generic[T]):
    """One preparation, run once on a thread of its own from whichever asks first.

    A daemon thread, not an executor's: a session stopped with Ctrl-C does not wait for pip.
    """

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._value: T | None = None
        self._error: BaseException | None = None
        self.seconds: float | None = None  # how long it took, once it is done

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="early-build", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self._value = self._build()
        except BaseException as error:  # handed to the test that asks, with its message
            self._error = error
        finally:
            self.seconds = time.monotonic() - started
            self._done.set()

    def result(self, timeout_s: float = INSTALL_TIMEOUT_S + 60) -> T:
        self.start()
        if not self._done.wait(timeout_s):
            raise BuildFailed(f"still building after {timeout_s} s")
        if self._error is not None:
            raise BuildFailed(str(self._error)) from self._error
        assert self._value is not None
        return self._value


class _ScratchDirs:
    """Where the early builds put what the repository does not keep: removed at session end."""

    def __init__(self) -> None:
        self._made: list[Path] = []

    def make(self, prefix: str) -> Path:
        made = Path(tempfile.mkdtemp(prefix=prefix))
        self._made.append(made)
        return made

    def remove(self) -> None:
        for made in self._made:
            shutil.rmtree(made, ignore_errors=True)


def build_deployed_layer() -> str:
    """infra/build_layer.sh as a deploy runs it: the arm64 layer serverless.yml zips (.build/layer).
    Returns the layer mode it was built in (``BUCKETSCRIBE_LAYER_MODE``, "full" unless told)."""
    layer_mode = os.environ.get("BUCKETSCRIBE_LAYER_MODE", "full")
    run_tool(
        ["bash", str(REPO / "infra" / "build_layer.sh")],
        timeout_s=300,
        env={**os.environ, "PYTHON": sys.executable, "BUCKETSCRIBE_LAYER_MODE": layer_mode},
    )
    return layer_mode


SCRATCH = _ScratchDirs()
DEPLOYED_LAYER = EarlyBuild(build_deployed_layer)
HOST_LAYER = EarlyBuild(lambda: build_host_layer(SCRATCH.make("host-layer-")))
CHECKOV = EarlyBuild(install_checkov)
FUNCTIONGRAPH_PACKAGE = EarlyBuild(
    lambda: build_functiongraph_package(SCRATCH.make("functiongraph-package-"))
)
# What a collected test's fixtures name → the build to start for it.
BY_FIXTURE: dict[str, EarlyBuild[Path] | EarlyBuild[HostLayer] | EarlyBuild[str]] = {
    "packaged": DEPLOYED_LAYER,
    "host_layer": HOST_LAYER,
    "checkov": CHECKOV,
    "functiongraph_package": FUNCTIONGRAPH_PACKAGE,
}

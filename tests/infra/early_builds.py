"""The Huawei deploy's two slow preparations, started as soon as the session knows it needs them.

checkov's own venv (a PyPI install: checkov pins boto3 < 1.36, so it cannot share ours) and the
FunctionGraph code package (``infra/huawei/build_package.py``: pip for the python3.12 target) took
~65 s and ~45 s on a loaded 2-core machine, one after the other, when the first Huawei test asked
for them. They wait mostly on the network, so ``conftest.pytest_collection_finish`` starts them
once the tests are collected, and they go on while the earlier tests run (the e2e tests mostly
wait on queues and clocks). A fixture then takes the result, waiting for it if need be; a build
that failed fails the tests that need it, with its output.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

from tests.infra.deploy_sources import HUAWEI, REPO

T = TypeVar("T")

CHECKS = HUAWEI / "checks"
CHECKOV_VENV = REPO / ".build" / "checkov-venv"
INSTALL_TIMEOUT_S = 600


class BuildFailed(RuntimeError):
    """A preparation did not succeed; its message carries the tool's output."""


def _run(cmd: list[str], *, timeout_s: float) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise BuildFailed(f"{cmd[0]} did not finish in {timeout_s} s: {exc}") from None


def install_checkov() -> str:
    """checkov from its own venv, (re)installed when infra/huawei/checks/requirements.txt changes."""
    requirements = (CHECKS / "requirements.txt").read_text(encoding="utf-8")
    stamp = CHECKOV_VENV / "installed-requirements.txt"
    executable = CHECKOV_VENV / "bin" / "checkov"
    if executable.exists() and stamp.exists() and stamp.read_text(encoding="utf-8") == requirements:
        return str(executable)
    created = _run([sys.executable, "-m", "venv", "--clear", str(CHECKOV_VENV)], timeout_s=120)
    if created.returncode != 0:
        raise BuildFailed(f"creating checkov's venv failed:\n{created.stderr}")
    pip = [
        str(CHECKOV_VENV / "bin" / "python"),
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
    ]
    installed = _run([*pip, "-r", str(CHECKS / "requirements.txt")], timeout_s=INSTALL_TIMEOUT_S)
    if installed.returncode != 0:
        raise BuildFailed(f"installing checkov failed:\n{installed.stdout}\n{installed.stderr}")
    stamp.write_text(requirements, encoding="utf-8")
    return str(executable)


def build_functiongraph_package(out: Path) -> Path:
    """The FunctionGraph code package, as a deploy builds it, in ``out``."""
    done = _run(
        [sys.executable, str(HUAWEI / "build_package.py"), "--out", str(out)], timeout_s=INSTALL_TIMEOUT_S
    )
    if done.returncode != 0:
        raise BuildFailed(
            f"build_package.py exited {done.returncode}:\n{done.stdout[-4000:]}{done.stderr[-4000:]}"
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

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="early-build", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            self._value = self._build()
        except BaseException as error:  # handed to the test that asks, with its message
            self._error = error
        finally:
            self._done.set()

    def result(self, timeout_s: float = INSTALL_TIMEOUT_S + 60) -> T:
        self.start()
        if not self._done.wait(timeout_s):
            raise BuildFailed(f"still building after {timeout_s} s")
        if self._error is not None:
            raise BuildFailed(str(self._error)) from self._error
        assert self._value is not None
        return self._value


class _PackageDir:
    """Where the early FunctionGraph package goes: a temporary directory removed at session end."""

    def __init__(self) -> None:
        self.path: Path | None = None

    def make(self) -> Path:
        self.path = Path(tempfile.mkdtemp(prefix="functiongraph-package-"))
        return self.path

    def remove(self) -> None:
        if self.path is not None:
            shutil.rmtree(self.path, ignore_errors=True)


PACKAGE_DIR = _PackageDir()
CHECKOV = EarlyBuild(install_checkov)
FUNCTIONGRAPH_PACKAGE = EarlyBuild(lambda: build_functiongraph_package(PACKAGE_DIR.make()))
# What a collected test's fixtures name → the build to start for it.
BY_FIXTURE: dict[str, EarlyBuild[str] | EarlyBuild[Path]] = {
    "checkov": CHECKOV,
    "functiongraph_package": FUNCTIONGRAPH_PACKAGE,
}

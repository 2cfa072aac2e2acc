"""The ``bucketscribe`` command run as a user runs it: a subprocess whose output is read as it comes.

``wait_for`` blocks until a line matching a pattern appears (or a deadline passes), so a test can
act once the command has really started work, with no sleeps.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO

# What an in-process local stack (the e2e fixture) leaves in os.environ for its functions: a user
# starting the command would not have it, and the command honours BUCKETSCRIBE_* settings.
STACK_SETTINGS = ("BUCKETSCRIBE_", "AWS_", "HUAWEICLOUD_", "POWERTOOLS_")


def user_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(STACK_SETTINGS)}


class CliProcess:
    def __init__(self, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bucketscribe.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**user_environment(), "PYTHONUNBUFFERED": "1", **(env or {})},
            cwd=cwd,
        )
        self.stdout = ""
        self.stderr = ""
        self._lines: queue.Queue[tuple[str, str]] = queue.Queue()
        self._readers = [
            threading.Thread(target=self._read, args=("stdout", self.process.stdout), daemon=True),
            threading.Thread(target=self._read, args=("stderr", self.process.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream: IO[str] | None) -> None:
        assert stream is not None
        for line in stream:
            self._lines.put((name, line))
        self._lines.put((name, ""))  # end of stream

    def _take(self, timeout: float) -> tuple[str, str] | None:
        try:
            name, line = self._lines.get(timeout=max(timeout, 0.0))
        except queue.Empty:
            return None
        if name == "stdout":
            self.stdout += line
        else:
            self.stderr += line
        return name, line

    def wait_for(self, pattern: str, *, stream: str = "stderr", timeout: float = 60.0) -> re.Match[str]:
        """The first match of ``pattern`` in a line of ``stream``; fails the test after ``timeout``."""
        deadline = time.monotonic() + timeout
        ended: set[str] = set()
        while time.monotonic() < deadline and len(ended) < 2:
            taken = self._take(deadline - time.monotonic())
            if taken is None:
                break
            name, line = taken
            if not line:
                ended.add(name)
            elif name == stream and (match := re.search(pattern, line)):
                return match
        raise AssertionError(
            f"no line matching {pattern!r} on {stream} within {timeout} s\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def finish(self, timeout: float) -> int:
        """Wait for the exit (killing the process after ``timeout``) and read what is left."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(
                f"still running after {timeout} s\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}"
            ) from None
        for reader in self._readers:
            reader.join(timeout=10)
        while self._take(0) is not None:
            continue
        return code

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

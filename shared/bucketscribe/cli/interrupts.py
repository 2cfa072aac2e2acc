"""Ctrl-C: a command stops its work and says what it finished; a second Ctrl-C (or the grace
period) leaves at once, without waiting for worker threads or printing a traceback."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from types import FrameType
from typing import NoReturn

from bucketscribe.cli.exit_codes import ExitCode

# After Ctrl-C a command gets this long to say what it finished before the process leaves anyway
# (worker threads may be in the middle of a file and are not waited for).
INTERRUPT_GRACE_S = 0.8


class _InterruptState:
    """What a second Ctrl-C or the grace timer says before leaving (set by commands that know more)."""

    note = "Interrupted."


INTERRUPT = _InterruptState()


def leave_now(*_: object, reported: bool = False) -> NoReturn:
    """Out at once: no worker thread is waited for, no cleanup can hang or print a traceback."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
    if not reported:
        os.write(2, f"{INTERRUPT.note}\n".encode())
    os._exit(ExitCode.INTERRUPTED)


def exit_at_once(code: int) -> NoReturn:
    """Leave with ``code`` once the command has finished and said so: streams are flushed, and
    nothing else (worker threads, the interpreter's teardown of every module) is waited for."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, RuntimeError):
            stream.flush()
    os._exit(code)


def install_interrupt_handler(policy: str) -> None:
    """``prompt``: Ctrl-C interrupts the work and the process is gone within INTERRUPT_GRACE_S.
    ``graceful`` (``up``): the first Ctrl-C asks for a clean stop, a second one leaves at once."""

    def on_sigint(signum: int, frame: FrameType | None) -> None:
        signal.signal(signal.SIGINT, leave_now)
        if policy == "prompt":
            timer = threading.Timer(INTERRUPT_GRACE_S, leave_now)
            timer.daemon = True
            timer.start()
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, on_sigint)

"""Exit codes (the same for every sub-command) and how input is refused before any work."""

from __future__ import annotations

import argparse
import json
import sys
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


EXIT_BAD_INPUT = ExitCode.USAGE


class ReportedInterrupt(KeyboardInterrupt):
    """Ctrl-C after the command has said what it finished and where."""


class BadInput(Exception):
    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")


def refuse(args: argparse.Namespace, what: str, problem: str) -> int:
    """Bad options, before any work: one line on stderr (and a JSON event with --json); exit 2."""
    sys.stderr.write(f"bucketscribe: error: {what}: {problem}\n")
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps({"event": "refused", "what": what, "reason": problem}) + "\n")
    return ExitCode.USAGE

"""The functions' logger writes to stdout (what Lambda reads); in the CLI's process stdout carries
results, so ``main`` points that logger at stderr before any command runs."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

import pytest

from bucketscribe.cli.main import function_logs_to_stderr
from bucketscribe.observability import SERVICE, logger

pytestmark = pytest.mark.unit


@contextmanager
def handler_on_stdout() -> Iterator[logging.StreamHandler[TextIO]]:
    """The functions' handler as a fresh process has it: on stdout (the test's captured one, so
    this is entered inside the test, where that stream lives)."""
    (handler,) = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    before = handler.stream
    handler.stream = sys.stdout
    try:
        yield handler
    finally:
        handler.stream = before  # not setStream: that flushes a capture pytest may have closed


def test_a_function_log_line_goes_to_stderr_in_the_cli(capsys: pytest.CaptureFixture[str]) -> None:
    with handler_on_stdout() as handler:
        logger.info("Transcript written")
        assert "Transcript written" in capsys.readouterr().out  # as in a function: stdout

        function_logs_to_stderr()
        logger.info("Transcript written")
        captured = capsys.readouterr()
        assert captured.out == "" and "Transcript written" in captured.err
        assert handler.stream is sys.stderr


def test_the_local_stack_hands_the_cli_its_stderr_back_when_it_stops(tmp_path: Path) -> None:
    from bucketscribe_local.stack import LocalStack, LocalStackOptions

    with handler_on_stdout() as handler:
        function_logs_to_stderr()
        stack = LocalStack(LocalStackOptions(instant=True, log_file=tmp_path / "functions.log"))
        stack._route_function_logs()  # what start() does once the functions are wired
        assert handler.stream is not sys.stdout and handler.stream is not sys.stderr  # the log file
        stack.stop()
        # A worker thread that logs after the stack stopped writes where the CLI said: stderr.
        assert handler.stream is sys.stderr

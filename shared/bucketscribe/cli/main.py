"""The ``bucketscribe`` command: transcribe recordings on this machine, run the local stack, follow
a deployed pipeline, and convert provider results.

Exit codes, the same for every sub-command:

- 0: everything asked for was done (also `up` stopped by Ctrl-C, its normal stop);
- 1: some files failed (each gets one line on stderr: file, code, reason), or what was asked
  could not be done (a job store that cannot be read);
- 2: bad usage or input, refused before any work started (one line per problem);
- 130: interrupted (Ctrl-C); what finished so far is listed, nothing half-written is left.
"""

from __future__ import annotations

import argparse
import logging
import sys
import textwrap
from collections.abc import Callable, Sequence
from importlib.metadata import entry_points
from typing import NoReturn

from bucketscribe.cli import admin, offline
from bucketscribe.cli.arguments import HELP_WIDTH, HelpFormatter, NewCommand
from bucketscribe.cli.exit_codes import BadInput, ExitCode, ReportedInterrupt
from bucketscribe.cli.interrupts import install_interrupt_handler, leave_now

# Packages that add commands (the local dev kit: transcribe, up, stream, demo) register a function
# ``register(command)`` under this entry-point group; the CLI never imports them by name.
COMMANDS_GROUP = "bucketscribe.commands"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bucketscribe")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _added_commands() -> list[Callable[[NewCommand], None]]:
    return [entry.load() for entry in sorted(entry_points(group=COMMANDS_GROUP), key=lambda e: e.name)]


def build_parser() -> argparse.ArgumentParser:
    doc = __doc__ or ""
    parser = argparse.ArgumentParser(
        prog="bucketscribe",
        description=textwrap.fill(
            "Transcribe recordings on this machine through the same pipeline that runs in the cloud, "
            "run that pipeline locally as a service, follow a deployed one, and convert provider results.",
            HELP_WIDTH,
        ),
        epilog=doc.split("\n\n", 1)[1],
        formatter_class=HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        name: str, summary: str, description: str, epilog: str | None = None
    ) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=textwrap.fill(description, HELP_WIDTH),
            epilog=epilog,
            formatter_class=HelpFormatter,
        )

    for register in _added_commands():
        register(command)
    offline.register(command)
    admin.register(command)
    return parser


def _fail(message: str) -> NoReturn:
    sys.stderr.write(f"bucketscribe: error: {message}\n")
    raise SystemExit(ExitCode.USAGE)


def function_logs_to_stderr() -> None:
    """Logs are never results. The functions' logger (Powertools, made when its module is imported)
    writes to stdout, as Lambda and FunctionGraph want it to; in this process stdout carries
    results (``--json`` events, a transcript, ``up --json``'s line), so its lines go to stderr —
    including one a worker thread writes while the local stack stops, or after. (The local stack
    may point them at a log file meanwhile; it hands back this stream when it stops.)"""
    from bucketscribe.observability import SERVICE

    for handler in logging.getLogger(SERVICE).handlers:
        if isinstance(handler, logging.StreamHandler) and handler.stream is sys.stdout:
            handler.setStream(sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # A worker thread that logs while the process winds down must not print "--- Logging error ---".
    logging.raiseExceptions = False
    function_logs_to_stderr()
    interrupt_policy = getattr(args, "interrupt", None)
    if interrupt_policy:
        install_interrupt_handler(interrupt_policy)
    try:
        code: int = args.run(args)
    except BadInput as exc:
        _fail(str(exc))
    except KeyboardInterrupt as interrupt:
        leave_now(reported=isinstance(interrupt, ReportedInterrupt))
    return int(code)


if __name__ == "__main__":
    raise SystemExit(main())

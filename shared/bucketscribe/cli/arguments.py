"""The parser's shared pieces: the help format and argument types that refuse bad values with the
reason."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

Number = TypeVar("Number", int, float)


OUTPUT_FORMATS = ("json", "txt", "srt", "vtt")


HELP_WIDTH = 88


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps descriptions and examples as written and shows every option's default.

    A flag says "(default: off)"; an option whose default is computed says so in its own help.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if action.nargs == 0:
            return f"{text} (default: off)"
        if action.default is None:
            return text
        return f"{text} (default: %(default)s)"


def _checked(
    convert: Callable[[str], Number], kind: str, accept: Callable[[Number], bool], rule: str
) -> Callable[[str], Number]:
    """An argparse type: ``convert`` the text, then refuse values outside ``rule`` with the reason."""

    def parse(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {kind}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{text} is not {rule}")
        return value

    return parse


positive_seconds = _checked(float, "a number of seconds", lambda v: v > 0, "a positive number of seconds")


positive_int = _checked(int, "a whole number", lambda v: v >= 1, "1 or more")


port_number = _checked(
    int, "a port number", lambda v: 0 <= v <= 65535, "a port number (0-65535; 0 picks a free one)"
)


def output_formats(text: str) -> list[str]:
    formats = [part.strip() for part in text.split(",") if part.strip()]
    unknown = [f for f in formats if f not in (*OUTPUT_FORMATS, "all")]
    if unknown or not formats:
        choices = ", ".join((*OUTPUT_FORMATS, "all"))
        raise argparse.ArgumentTypeError(f"{text!r}: choose from {choices} (comma-separated)")
    return formats


NewCommand = Callable[..., argparse.ArgumentParser]
"""``command(name, summary, description, epilog)``: a sub-command's parser, formatted like all others."""

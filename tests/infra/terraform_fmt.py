"""The layout rules of ``terraform fmt`` that matter for review, checked without Terraform (its
binary cannot be installed on these machines, environment.md §9).

Checked, as hclwrite's formatter applies them:

- indentation: two spaces per open ``{`` / ``[`` / ``(`` (outside strings and comments), a closing
  line one level out;
- alignment: in a run of consecutive one-line ``name = value`` lines at one depth, the ``=`` signs
  line up one space after the longest name. A blank line, a comment-only line, a block header, a
  closing line or an attribute whose value spans lines ends the run (that attribute itself keeps a
  single space before ``=``);
- no tabs, no trailing spaces, one newline at the end of the file.

Not checked: the alignment of trailing comments, spacing inside expressions, heredocs (none of
the project's files use them). ``problems`` returns one line per departure, with its line number.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ATTRIBUTE = re.compile(
    r'^(?P<indent> *)(?P<name>[A-Za-z_][\w-]*|"[^"]*")(?P<gap> *)=(?![=>])(?P<after> ?)(?P<value>.*)$'
)


@dataclass
class _Line:
    number: int
    text: str
    depth: int  # indentation levels open before this line
    closes_first: bool  # the line starts by closing the innermost level
    opens: int  # brackets this line leaves open (negative: it closes more than it opens)


def _scan(text: str) -> list[_Line]:
    """The indentation level of every line. Brackets opened on one line make one level however
    many there are (``jsonencode({`` indents its body once, ``})`` closes it), as hclwrite does.
    Brackets in strings and comments (``#``, ``//``, ``/* */``) do not count; ``${ }`` inside a
    string is code."""
    lines: list[_Line] = []
    levels: list[int] = []  # per open level: its brackets still open
    in_string = False
    interpolation: list[int] = []  # brackets open inside each ${ } of the current string
    in_block_comment = False
    for number, line in enumerate(text.split("\n"), start=1):
        start_level = len(levels)
        stripped = line.lstrip()
        closes_first = bool(stripped) and stripped[0] in "}])" and not in_string and not in_block_comment
        pending = 0  # brackets opened on this line and still open
        net = 0
        i = 0
        while i < len(line):
            char, pair = line[i], line[i : i + 2]
            if in_block_comment:
                if pair == "*/":
                    in_block_comment = False
                    i += 1
            elif in_string and not interpolation:
                if char == "\\":
                    i += 1
                elif pair == "${":
                    interpolation.append(0)
                    i += 1
                elif char == '"':
                    in_string = False
            elif char == '"':
                in_string = True
            elif char == "#" or pair == "//":
                break
            elif pair == "/*":
                in_block_comment = True
                i += 1
            elif char in "{[(":
                if interpolation:
                    interpolation[-1] += 1
                else:
                    pending += 1
                    net += 1
            elif char in "}])":
                if interpolation and interpolation[-1] == 0 and char == "}":
                    interpolation.pop()  # the end of ${ }: back in the string
                elif interpolation:
                    interpolation[-1] -= 1
                elif pending:
                    pending -= 1
                    net -= 1
                elif levels:
                    net -= 1
                    levels[-1] -= 1
                    if levels[-1] == 0:
                        levels.pop()
            i += 1
        if pending:
            levels.append(pending)
        lines.append(_Line(number, line, start_level, closes_first, net))
    return lines


def problems(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    found: list[str] = []
    if "\t" in text:
        found.append(f"{path.name}: tabs")
    if not text.endswith("\n") or text.endswith("\n\n"):
        found.append(f"{path.name}: the file must end with exactly one newline")
    lines = _scan(text.rstrip("\n"))
    for line in lines:
        if line.text != line.text.rstrip():
            found.append(f"{path.name}:{line.number}: trailing whitespace")
        if not line.text.strip():
            continue
        expected = 2 * (line.depth - (1 if line.closes_first else 0))
        indent = len(line.text) - len(line.text.lstrip(" "))
        if indent != expected:
            found.append(f"{path.name}:{line.number}: indented {indent}, terraform fmt indents {expected}")
    found += _alignment(path.name, lines)
    return found


def _alignment(name: str, lines: list[_Line]) -> list[str]:
    found: list[str] = []
    run: list[tuple[_Line, re.Match[str]]] = []

    def close_run() -> None:
        if run:
            width = max(len(match["name"]) for _, match in run)
            for line, match in run:
                gap = width - len(match["name"]) + 1
                if len(match["gap"]) != gap or match["after"] != " ":
                    want = f"{match['name']}{' ' * gap}= {match['value']}"
                    found.append(f"{name}:{line.number}: terraform fmt writes '{want.strip()}'")
            run.clear()

    for line in lines:
        match = _ATTRIBUTE.match(line.text)
        if match and line.opens == 0 and not line.closes_first:
            if run and run[0][0].depth != line.depth:
                close_run()
            run.append((line, match))
            continue
        close_run()
        if match and line.opens > 0 and (len(match["gap"]) != 1 or match["after"] != " "):
            found.append(f"{name}:{line.number}: a multi-line attribute has one space around '='")
    close_run()
    return found

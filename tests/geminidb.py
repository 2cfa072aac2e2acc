"""What GeminiDB's DynamoDB-compatible API accepts, as a checker for captured DynamoDB requests.

Encodes Huawei's "API Compatibility" page for GeminiDB DynamoDB-Compatible API
(https://support.huaweicloud.com/intl/en-us/dynamodbug-nosql/nosql_dynamodb_0004.html, and the
Chinese original https://support.huaweicloud.com/dynamodbug-nosql/nosql_dynamodb_0004.html;
the GeminiDB Serverless page nosql_dynamodb_00205.html states the same and extends the function
rule to FilterExpression):

- "The current version does not support ... transaction functions (TransactWriteItems and
  TransactGetItems)" nor the on-demand backup APIs; the compatible API list is the fourteen in
  ``COMPATIBLE_APIS``.
- "The table or index name cannot contain periods (.)"; CreateTable: TableName "3~48
  characters, regex ([\\w-]+)"; BillingMode, SSESpecification, StreamSpecification and Tags are
  not supported.
- PutItem: the legacy ConditionalOperator and Expected are not supported (use
  ConditionExpression); applied here to every operation.
- ConditionExpression (and FilterExpression) "supports the following function syntax":
  attribute_exists, attribute_not_exists, attribute_type, begins_with, contains; "operand in
  contains(path,operand) can only be an attribute value (that is, the value placeholder)". So
  ``size()`` is out.
- UpdateExpression: "In SET path = operand, operand cannot be set to path. In SET path =
  operand1 '+'|'-' operand2, operand1 must be set to path, and operand2 must be an attribute
  value. In SET path = if_not_exists (path, value), values of the two path parameters must be
  the same and must be expression attribute values. All values can only be placeholders."
  Functions in SET: if_not_exists and list_append only.

The page shows only the *function* production of the condition grammar. It says nothing either
way about comparators, ``IN``, ``BETWEEN`` or ``AND/OR/NOT``; ``geminidb_undocumented`` lists
the ``IN`` and ``BETWEEN`` a request uses so a caller can decide, while comparators and the
logical operators are taken as supported (every example condition needs them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

COMPATIBLE_APIS = frozenset(
    {
        "CreateTable",
        "UpdateTable",
        "DescribeTable",
        "ListTables",
        "DeleteTable",
        "PutItem",
        "UpdateItem",
        "GetItem",
        "DeleteItem",
        "BatchWriteItem",
        "BatchGetItem",
        "Query",
        "Scan",
        "UpdateTimeToLive",
    }
)
CONDITION_FUNCTIONS = frozenset(
    {"attribute_exists", "attribute_not_exists", "attribute_type", "begins_with", "contains"}
)
UPDATE_FUNCTIONS = frozenset({"if_not_exists", "list_append"})
UNSUPPORTED_PARAMETERS = {
    "CreateTable": ("BillingMode", "SSESpecification", "StreamSpecification", "Tags"),
    "UpdateTable": (
        "BillingMode",
        "ProvisionedThroughput",
        "ReplicaUpdates",
        "SSESpecification",
        "StreamSpecification",
    ),
}
LEGACY_PARAMETERS = ("ConditionalOperator", "Expected")
TABLE_NAME = re.compile(r"[\w-]{3,48}")
LOGICAL_KEYWORDS = frozenset({"AND", "OR", "NOT", "BETWEEN", "IN"})
UNDOCUMENTED_KEYWORDS = ("IN", "BETWEEN")

_TOKEN = re.compile(
    r"""\s*(?:
      (?P<name>\#[A-Za-z0-9_]+)
    | (?P<value>:[A-Za-z0-9_]+)
    | (?P<comparator><>|<=|>=|=|<|>)
    | (?P<punct>[(),.\[\]+\-])
    | (?P<number>\d+)
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(expression: str) -> list[Token]:
    found: list[Token] = []
    position = 0
    expression = expression.rstrip()
    while position < len(expression):
        match = _TOKEN.match(expression, position)
        if match is None or match.end() == position:
            raise ValueError(f"cannot read {expression!r} at {position}")
        kind = match.lastgroup
        assert kind is not None
        found.append(Token(kind, match.group(kind)))
        position = match.end()
    return found


def _calls(found: Sequence[Token]) -> Iterator[tuple[int, str]]:
    """(index, name) of every function call: a word, not a keyword, followed by '('."""
    for index, token in enumerate(found[:-1]):
        keyword = token.text.upper() in LOGICAL_KEYWORDS
        if token.kind == "word" and not keyword and found[index + 1].text == "(":
            yield index, token.text


def _arguments(found: Sequence[Token], open_index: int) -> list[list[Token]]:
    """The comma-separated arguments of the call whose '(' is at ``open_index``."""
    depth = 0
    current: list[Token] = []
    arguments: list[list[Token]] = []
    for token in found[open_index + 1 :]:
        if token.text in "([":
            depth += 1
        elif token.text in ")]":
            if depth == 0:
                arguments.append(current)
                return arguments
            depth -= 1
        elif token.text == "," and depth == 0:
            arguments.append(current)
            current = []
            continue
        current.append(token)
    raise ValueError("unbalanced parentheses")


def _split(found: Sequence[Token], separators: frozenset[str]) -> list[list[Token]]:
    """Split at top-level (outside parentheses) separators (case-insensitive), keeping them:
    ``[part, separator, part, separator, part, ...]``."""
    depth = 0
    current: list[Token] = []
    parts: list[list[Token]] = []
    for token in found:
        if token.text in "([":
            depth += 1
        elif token.text in ")]":
            depth -= 1
        if depth == 0 and token.kind in {"word", "punct"} and token.text.upper() in separators:
            parts.append(current)
            parts.append([token])
            current = []
            continue
        current.append(token)
    parts.append(current)
    return parts


def _is_value(operand: Sequence[Token]) -> bool:
    return len(operand) == 1 and operand[0].kind == "value"


def _is_path(operand: Sequence[Token]) -> bool:
    return bool(operand) and all(t.kind in {"name", "word", "number"} or t.text in ".[]" for t in operand)


def _path(operand: Sequence[Token], names: Mapping[str, str]) -> str:
    return "".join(names.get(t.text, t.text) if t.kind == "name" else t.text for t in operand)


def condition_violations(expression: str, *, field: str) -> list[str]:
    found = tokens(expression)
    problems = []
    for index, name in _calls(found):
        if name not in CONDITION_FUNCTIONS:
            problems.append(
                f"{field}: function {name}() is not supported (only {sorted(CONDITION_FUNCTIONS)})"
            )
        elif name == "contains":
            arguments = _arguments(found, index + 1)
            if len(arguments) != 2 or not _is_value(arguments[1]):
                problems.append(f"{field}: contains(path, operand) takes only a value placeholder as operand")
    return problems


def update_violations(expression: str, names: Mapping[str, str]) -> list[str]:
    found = tokens(expression)
    problems = []
    for _, name in _calls(found):
        if name not in UPDATE_FUNCTIONS:
            problems.append(
                f"UpdateExpression: function {name}() is not supported (only {sorted(UPDATE_FUNCTIONS)})"
            )
    clauses = _split(found, frozenset({"SET", "REMOVE", "ADD", "DELETE"}))
    for keyword, body in zip(clauses[1::2], clauses[2::2], strict=True):
        if keyword[0].text.upper() == "SET":
            for action in _split(body, frozenset({","}))[::2]:
                problems.extend(_set_action_violations(action, names))
    return problems


def _set_action_violations(action: Sequence[Token], names: Mapping[str, str]) -> list[str]:
    equals = next(i for i, t in enumerate(action) if t.text == "=")
    target = _path(action[:equals], names)
    value = _split(action[equals + 1 :], frozenset({"+", "-"}))
    where = f"UpdateExpression: SET {target} = ..."
    if len(value) == 1:
        operand = value[0]
        if _is_path(operand):
            return [f"{where}: the operand cannot be a path"]
        if operand and operand[0].text == "if_not_exists":
            arguments = _arguments(operand, 1)
            if len(arguments) != 2 or _path(arguments[0], names) != target or not _is_value(arguments[1]):
                return [f"{where}: if_not_exists(path, value) needs the same path and a value placeholder"]
        return []
    if len(value) == 3:
        first, second = value[0], value[2]
        if not (_is_path(first) and _path(first, names) == target):
            return [f"{where}: in path = operand1 +/- operand2, operand1 must be the same path"]
        if not _is_value(second):
            return [f"{where}: in path = operand1 +/- operand2, operand2 must be a value placeholder"]
        return []
    return [f"{where}: at most one + or - is supported"]


def _table_names(operation: str, params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    if "TableName" in params:
        yield "TableName", params["TableName"]
    if "IndexName" in params:
        yield "IndexName", params["IndexName"]
    for table in params.get("RequestItems", {}):
        yield "RequestItems", table
    for kind in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        for index in params.get(kind, []):
            yield kind, index["IndexName"]
    for update in params.get("GlobalSecondaryIndexUpdates", []):
        for action in update.values():
            yield "GlobalSecondaryIndexUpdates", action["IndexName"]


def _expressions(params: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    for field in ("ConditionExpression", "FilterExpression"):
        if field in params:
            yield field, params[field]
    for table, request in params.get("RequestItems", {}).items():
        if isinstance(request, Mapping) and "FilterExpression" in request:
            yield f"RequestItems[{table}].FilterExpression", request["FilterExpression"]


def geminidb_violations(operation_name: str, params: Mapping[str, Any]) -> list[str]:
    """Everything in one DynamoDB request that Huawei's page says GeminiDB does not support."""
    if operation_name not in COMPATIBLE_APIS:
        return [f"{operation_name} is not among GeminiDB's compatible APIs"]
    problems = []
    for field, name in _table_names(operation_name, params):
        if "." in name:
            problems.append(f"{field} {name!r}: table and index names cannot contain '.'")
    if operation_name == "CreateTable" and not TABLE_NAME.fullmatch(params.get("TableName", "")):
        problems.append(f"TableName {params.get('TableName')!r}: 3 to 48 characters of [A-Za-z0-9_-]")
    for parameter in UNSUPPORTED_PARAMETERS.get(operation_name, ()):
        if parameter in params:
            problems.append(f"{operation_name}: {parameter} is not supported")
    for update in params.get("GlobalSecondaryIndexUpdates", []):
        if "Update" in update:
            problems.append("UpdateTable: GlobalSecondaryIndexUpdates supports Create and Delete, not Update")
    for parameter in LEGACY_PARAMETERS:
        if parameter in params:
            problems.append(f"{operation_name}: the legacy {parameter} is not supported")
    for field, expression in _expressions(params):
        problems.extend(condition_violations(expression, field=field))
    if "UpdateExpression" in params:
        problems.extend(
            update_violations(params["UpdateExpression"], params.get("ExpressionAttributeNames", {}))
        )
    return problems


def geminidb_undocumented(operation_name: str, params: Mapping[str, Any]) -> list[str]:
    """Condition keywords the page neither allows nor forbids (IN, BETWEEN) that a request uses."""
    used = []
    for field, expression in _expressions(params):
        for token in tokens(expression):
            if token.kind == "word" and token.text.upper() in UNDOCUMENTED_KEYWORDS:
                used.append(f"{operation_name} {field}: {token.text.upper()}")
    return used

"""The GeminiDB compatibility checker (tests/geminidb.py) against the page's own rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.geminidb import geminidb_undocumented, geminidb_violations

pytestmark = pytest.mark.unit

NAMES = {"#state": "state", "#n": "count"}


def put(condition: str) -> dict[str, Any]:
    return {
        "TableName": "jobs",
        "Item": {},
        "ConditionExpression": condition,
        "ExpressionAttributeNames": NAMES,
    }


def update(expression: str) -> dict[str, Any]:
    return {"TableName": "jobs", "Key": {}, "UpdateExpression": expression, "ExpressionAttributeNames": NAMES}


@pytest.mark.parametrize(
    "operation", ["TransactWriteItems", "TransactGetItems", "CreateBackup", "DescribeTimeToLive"]
)
def test_operations_outside_the_compatible_list_are_violations(operation: str) -> None:
    assert geminidb_violations(operation, {}) == [f"{operation} is not among GeminiDB's compatible APIs"]


@pytest.mark.parametrize(
    "condition",
    [
        "attribute_not_exists(id)",
        "#state = :accepted AND (attribute_not_exists(claimed_until) OR claimed_until < :now)",
        "attribute_type(doc, :s) AND begins_with(id, :p) AND contains(tags, :t)",
        "NOT attribute_exists(id) OR #state <> :done",
    ],
)
def test_documented_condition_functions_and_comparators_pass(condition: str) -> None:
    assert geminidb_violations("PutItem", put(condition)) == []


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ("size(doc) < :max", "function size() is not supported"),
        ("contains(tags, other_attribute)", "contains(path, operand) takes only a value placeholder"),
        ("attribute_exists(id) AND SIZE(doc) > :n", "function SIZE() is not supported"),
    ],
)
def test_other_condition_functions_are_violations(condition: str, problem: str) -> None:
    (found,) = geminidb_violations("PutItem", put(condition))
    assert problem in found


def test_filter_expressions_follow_the_same_function_rule() -> None:
    (found,) = geminidb_violations("Query", {"TableName": "jobs", "FilterExpression": "size(files) > :n"})
    assert found.startswith("FilterExpression: function size()")


@pytest.mark.parametrize(
    "expression",
    [
        "SET doc = :doc, #state = :s REMOVE claimed_until",
        "SET #n = #n + :one",
        "SET count = #n - :one",  # #n names the same attribute
        "SET created = if_not_exists(created, :now)",
        "SET files = list_append(files, :more) ADD seen :one DELETE tags :old",
    ],
)
def test_documented_update_forms_pass(expression: str) -> None:
    assert geminidb_violations("UpdateItem", update(expression)) == []


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("SET a = b", "the operand cannot be a path"),
        ("SET a = b + :v", "operand1 must be the same path"),
        ("SET a = :v + a", "operand1 must be the same path"),
        ("SET a = a + b", "operand2 must be a value placeholder"),
        ("SET a = if_not_exists(b, :v)", "if_not_exists(path, value) needs the same path"),
        ("SET a = if_not_exists(a, b)", "if_not_exists(path, value) needs the same path"),
        ("set a = b", "the operand cannot be a path"),
    ],
)
def test_update_restrictions_are_violations(expression: str, problem: str) -> None:
    (found,) = geminidb_violations("UpdateItem", update(expression))
    assert problem in found


def test_names_with_a_period_and_table_creation_options() -> None:
    found = geminidb_violations(
        "CreateTable",
        {
            "TableName": "jobs.v2",
            "BillingMode": "PAY_PER_REQUEST",
            "GlobalSecondaryIndexes": [{"IndexName": "by.state"}],
        },
    )
    assert found == [
        "TableName 'jobs.v2': table and index names cannot contain '.'",
        "GlobalSecondaryIndexes 'by.state': table and index names cannot contain '.'",
        "TableName 'jobs.v2': 3 to 48 characters of [A-Za-z0-9_-]",
        "CreateTable: BillingMode is not supported",
    ]
    assert geminidb_violations("Query", {"TableName": "jobs", "IndexName": "by.state"}) == [
        "IndexName 'by.state': table and index names cannot contain '.'"
    ]


def test_legacy_conditional_parameters_are_violations() -> None:
    assert geminidb_violations("PutItem", {"TableName": "jobs", "Expected": {}}) == [
        "PutItem: the legacy Expected is not supported"
    ]


def test_in_and_between_are_reported_as_undocumented_not_as_violations() -> None:
    params = put("#state IN (:a, :b) AND next_check_at BETWEEN :x AND :y")
    assert geminidb_violations("PutItem", params) == []
    assert geminidb_undocumented("PutItem", params) == [
        "PutItem ConditionExpression: IN",
        "PutItem ConditionExpression: BETWEEN",
    ]

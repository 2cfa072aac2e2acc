"""What `terraform plan` would refuse in infra/huawei, checked offline (no Terraform binary, no
registry here: environment.md §9), plus `terraform fmt`'s layout.

Against the provider's schema as its documentation gives it at a release
(fixtures/huaweicloud_schema.json, written by make_provider_schema.py): every resource and data
source type exists, every argument and nested block used exists, every required argument is set;
every reference (var., local., resource and data attributes) resolves; every file a function reads
exists and every placeholder a policy template uses is given; every variable without a default is
set by terraform.tfvars.example; and the provider floor is the first release with every type used.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.infra.deploy_sources import HUAWEI, Terraform, load_terraform, terraform
from tests.infra.terraform_fmt import problems

pytestmark = pytest.mark.infra

SCHEMA_PATH = Path(__file__).parent / "fixtures" / "huaweicloud_schema.json"
INSECURE_FIXTURE = Path(__file__).parent / "fixtures" / "huawei_insecure"
# Terraform's own keys inside resource blocks, not the provider's.
META_ARGUMENTS = {"for_each", "count", "depends_on", "lifecycle", "provider", "provisioner", "connection"}
# Names an expression may use besides var., local., resources and data sources.
BUILTIN_REFERENCES = {"each", "path", "count", "self", "terraform"}
FUNCTIONS = {
    "coalesce",
    "contains",
    "file",
    "filemd5",
    "jsonencode",
    "merge",
    "replace",
    "templatefile",
    "tostring",
    "try",
    "can",
    "regex",
    "toset",
}
# The huaweicloud release in which each type used first appeared (its CHANGELOG.md, and the docs
# absent at the previous tag); the floor in versions.tf must be the newest of them.
FIRST_RELEASE = {"huaweicloud_identityv5_policy_agency_attach": "1.95.0"}


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _expressions(text: str) -> Iterator[str]:
    """The ${...} expressions in a value as python-hcl2 gives it (nested braces included)."""
    start = text.find("${")
    while start != -1:
        depth, end = 0, start + 2
        for end in range(start + 2, len(text)):
            if text[end] == "{":
                depth += 1
            elif text[end] == "}":
                if depth == 0:
                    break
                depth -= 1
        yield text[start + 2 : end]
        start = text.find("${", end)


def _without_string_literals(expression: str) -> str:
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)


# -- the schema ------------------------------------------------------------------------------------


def _check_body(kind: str, body: dict[str, Any], spec: dict[str, Any], where: str) -> list[str]:
    """Arguments and nested blocks of one resource body (or nested block) against the schema."""
    found = []
    arguments: dict[str, bool] = spec["arguments"]
    blocks: dict[str, dict[str, bool]] = spec["blocks"]
    present = set(body)
    for dynamic in body.get("dynamic", []):
        present |= set(dynamic)
    for name, required in arguments.items():
        if required and name not in present:
            found.append(f"{where}: required argument {name} is missing")
    for key, value in body.items():
        if key in META_ARGUMENTS:
            continue
        if key == "dynamic":
            for dynamic in value:
                for block_name, generator in dynamic.items():
                    if block_name not in blocks:
                        found.append(f"{where}: {kind} has no block {block_name}")
                        continue
                    for content in generator["content"]:
                        found += _check_nested(kind, block_name, content, blocks[block_name], where)
            continue
        if key in blocks and isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for nested in value:
                found += _check_nested(kind, key, nested, blocks[key], where)
        elif key not in arguments:
            found.append(f"{where}: {kind} has no argument {key}")
    return found


def _check_nested(
    kind: str, block: str, body: dict[str, Any], arguments: dict[str, bool], where: str
) -> list[str]:
    found = [
        f"{where}.{block}: required argument {n} is missing"
        for n, r in arguments.items()
        if r and n not in body
    ]
    nested_blocks = schema()["resources"].get(kind, {}).get("blocks", {})
    for key, value in body.items():
        if key in arguments:
            continue
        if key in nested_blocks and isinstance(value, list):
            for inner in value:
                found += _check_nested(kind, key, inner, nested_blocks[key], f"{where}.{block}")
        else:
            found.append(f"{where}.{block}: {kind} has no argument {key} in {block}")
    return found


def schema_problems(tf: Terraform) -> list[str]:
    found = []
    for kind, named in tf.resources.items():
        spec = schema()["resources"].get(kind)
        if spec is None:
            found.append(f"resource type {kind} is not in the provider schema")
            continue
        for name, body in named.items():
            found += _check_body(kind, body, spec, f"{kind}.{name}")
    for kind, named in tf.data.items():
        spec = schema()["data"].get(kind)
        if spec is None:
            found.append(f"data source type {kind} is not in the provider schema")
            continue
        for name, body in named.items():
            found += _check_body(kind, body, spec, f"data.{kind}.{name}")
    return found


# -- references ------------------------------------------------------------------------------------


def reference_problems(tf: Terraform) -> list[str]:
    found = []
    everything = [tf.resources, tf.data, tf.locals, tf.outputs, tf.variables, tf.providers]
    for text in (s for part in everything for s in _strings(part)):
        for expression in _expressions(text):
            code = _without_string_literals(expression)
            found += _references_in(tf, code, expression)
    return found


_TRAVERSAL = re.compile(r"(?<![\w.])([a-z_][a-z0-9_]*)((?:\.[a-z_][a-z0-9_]*|\[[^\]]*\])*)")


def _references_in(tf: Terraform, code: str, expression: str) -> list[str]:
    found = []
    for match in _TRAVERSAL.finditer(code):
        root, rest = match.group(1), match.group(2)
        after = code[match.end() :].lstrip()
        if not rest and re.match(r"=(?![=>])", after):
            continue  # an object's key: { bucket = ... }
        if after.startswith("(") and not rest:
            if root not in FUNCTIONS:
                found.append(f"${{{expression}}}: unknown function {root}")
            continue
        found += _resolve(tf, root, re.sub(r"\[[^\]]*\]", "", rest), expression)
        for index in re.findall(r"\[([^\]]*)\]", rest):  # local.x[var.y]: var.y too
            found += _references_in(tf, index, expression)
    return found


def _resolve(tf: Terraform, root: str, rest: str, expression: str) -> list[str]:
    parts = re.findall(r"\.([a-z_][a-z0-9_]*)", rest)
    where = f"${{{expression}}}"
    if root == "var":
        return [] if parts and parts[0] in tf.variables else [f"{where}: no variable {parts[:1]}"]
    if root == "local":
        return [] if parts and parts[0] in tf.locals else [f"{where}: no local {parts[:1]}"]
    if root == "data":
        if len(parts) < 2 or parts[1] not in tf.data.get(parts[0], {}):
            return [f"{where}: no data source {'.'.join(parts[:2])}"]
        spec = schema()["data"][parts[0]]
        exported = set(spec["arguments"]) | set(spec["attributes"])
        if len(parts) > 2 and parts[2] not in exported:
            return [f"{where}: data.{parts[0]} exports no {parts[2]}"]
        if len(parts) > 3 and parts[3] not in spec["nested_attributes"].get(parts[2], []):
            return [f"{where}: data.{parts[0]}.{parts[2]} has no {parts[3]}"]
        return []
    if root in tf.resources:
        if not parts or parts[0] not in tf.resources[root]:
            return [f"{where}: no resource {root}.{parts[:1]}"]
        spec = schema()["resources"][root]
        exported = set(spec["arguments"]) | set(spec["attributes"]) | set(spec["blocks"])
        if len(parts) > 1 and parts[1] not in exported:
            return [f"{where}: {root} exports no {parts[1]}"]
        return []
    if root.startswith(("huaweicloud_", "random_")):
        return [f"{where}: no resource of type {root} is declared"]
    if root in BUILTIN_REFERENCES or root in {"true", "false", "null", "for", "in", "if"}:
        return []
    # The iterator of a dynamic block, or a for expression's variables.
    if re.search(rf"\bfor\s+(?:\w+\s*,\s*)?{root}\b|\bfor\s+{root}\s*,", expression) or parts == ["value"]:
        return []
    return [f"{where}: {root} resolves to nothing"]


# -- the tests -------------------------------------------------------------------------------------


def test_the_schema_fixture_is_the_provider_release_the_floor_allows() -> None:
    versions = (HUAWEI / "versions.tf").read_text(encoding="utf-8")
    floor = re.search(
        r'source\s*=\s*"huaweicloud/huaweicloud"\s*\n\s*version\s*=\s*">= ([\d.]+), < ([\d.]+)"', versions
    )
    assert floor, "versions.tf pins huaweicloud/huaweicloud with a floor and a ceiling"
    newest_needed = max(FIRST_RELEASE.values(), key=lambda v: tuple(map(int, v.split("."))))
    assert floor.group(1) == newest_needed, "the floor is the first release that has every resource type used"
    assert tuple(map(int, floor.group(1).split("."))) <= tuple(map(int, schema()["version"].split(".")))
    assert tuple(map(int, schema()["version"].split("."))) < tuple(map(int, floor.group(2).split(".")))
    used = set(terraform().resources) | {f"data.{kind}" for kind in terraform().data}
    documented = set(schema()["resources"]) | {f"data.{kind}" for kind in schema()["data"]}
    assert used <= documented


def test_every_type_argument_and_block_exists_and_every_required_argument_is_set() -> None:
    assert schema_problems(terraform()) == []


def test_every_reference_resolves() -> None:
    assert reference_problems(terraform()) == []


def test_the_checks_find_what_plan_would_refuse(tmp_path: Path) -> None:
    """The two checks above on a copy of the deploy with one mistake of each kind."""
    for source in HUAWEI.glob("*.tf"):
        (tmp_path / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "broken.tf").write_text(
        """
resource "huaweicloud_lts_stream" "broken" {
  group_id   = huaweicloud_lts_group.functions.no_such_attr
  nickname   = "x"
  stream_tag = var.no_such_variable
}

output "broken" {
  value = local.no_such_local
}
""",
        encoding="utf-8",
    )
    broken = load_terraform(tmp_path)
    assert schema_problems(broken) == [
        "huaweicloud_lts_stream.broken: required argument stream_name is missing",
        "huaweicloud_lts_stream.broken: huaweicloud_lts_stream has no argument nickname",
        "huaweicloud_lts_stream.broken: huaweicloud_lts_stream has no argument stream_tag",
    ]
    assert sorted(reference_problems(broken)) == [
        "${huaweicloud_lts_group.functions.no_such_attr}: huaweicloud_lts_group exports no no_such_attr",
        "${local.no_such_local}: no local ['no_such_local']",
        "${var.no_such_variable}: no variable ['no_such_variable']",
    ]


def test_files_and_template_placeholders_exist() -> None:
    tf = terraform()
    policy_values = set(tf.locals["policy_values"])
    texts = [s for part in (tf.resources, tf.locals) for s in _strings(part)]
    paths = {m for text in texts for m in re.findall(r"\$\{path\.module\}/([\w./-]+\.json)", text)}
    assert paths, "the policies are read from files"
    for relative in paths:
        assert (HUAWEI / relative).is_file(), relative
    # policies/${each.key}.json, for each function.
    for function in tf.locals["functions"]:
        assert (HUAWEI / "policies" / f"{function}.json").is_file(), function
    for policy in (HUAWEI / "policies").glob("*.json"):
        placeholders = set(re.findall(r"\$\{(\w+)\}", policy.read_text(encoding="utf-8")))
        if policy.name == "bucket_tls_only.json":
            assert placeholders == {"bucket"}  # given inline in storage.tf
        else:
            assert placeholders <= policy_values, (policy.name, placeholders - policy_values)


def test_the_example_variables_set_every_variable_without_a_default() -> None:
    import hcl2

    with (HUAWEI / "terraform.tfvars.example").open(encoding="utf-8") as source:
        example = {key: value for key, value in hcl2.load(source).items() if not key.startswith("__")}
    required = {name for name, spec in terraform().variables.items() if "default" not in spec}
    assert required <= set(example), sorted(required - set(example))
    assert set(example) <= set(terraform().variables)


def test_terraform_fmt_would_change_nothing() -> None:
    found = [problem for path in sorted(HUAWEI.glob("*.tf")) for problem in problems(path)]
    found += [problem for path in sorted(INSECURE_FIXTURE.glob("*.tf")) for problem in problems(path)]
    assert found == []


def test_the_fmt_check_finds_what_terraform_fmt_changes(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tf"
    bad.write_text(
        'resource "x" "y" {\n'
        "  name = 1\n"
        "  longer_name = 2\n"  # not aligned with the line above
        "   tags = {}\n"  # three spaces
        "  event_data = jsonencode({\n"
        "    a = 1\n"
        "  })\n"
        "}\n",
        encoding="utf-8",
    )
    assert problems(bad) == [
        "bad.tf:4: indented 3, terraform fmt indents 2",
        "bad.tf:2: terraform fmt writes 'name        = 1'",
        "bad.tf:4: terraform fmt writes 'tags        = {}'",
    ]

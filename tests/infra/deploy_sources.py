"""The deploy definitions as data: infra/functions.toml, serverless.yml (+ infra/resources) and
infra/huawei/*.tf, read offline with real parsers (tomllib, PyYAML, python-hcl2)."""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import yaml
from hcl2.utils import SerializationOptions

REPO = Path(__file__).resolve().parents[2]
HUAWEI = REPO / "infra" / "huawei"

Manifest = dict[str, Any]


@cache
def manifest() -> Manifest:
    return tomllib.loads((REPO / "infra" / "functions.toml").read_text(encoding="utf-8"))


# -- AWS: serverless.yml and the CloudFormation it includes -------------------------------------


@dataclass(frozen=True)
class Tagged:
    """A CloudFormation short-form value (``!Ref X``, ``!GetAtt X.Arn``, ``!Sub ...``)."""

    tag: str
    value: Any


class _CloudFormationLoader(yaml.SafeLoader):
    pass


def _tagged(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged(suffix, value)


_CloudFormationLoader.add_multi_constructor("!", _tagged)


def load_cloudformation_yaml(path: Path) -> Any:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=_CloudFormationLoader)  # noqa: S506 - SafeLoader subclass


@dataclass
class Serverless:
    config: dict[str, Any]
    resources: dict[str, Any] = field(default_factory=dict)
    # CloudFormation stack parameters and conditions the included files declare.
    parameters: dict[str, Any] = field(default_factory=dict)
    conditions: dict[str, Any] = field(default_factory=dict)

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.config["params"]["default"])

    def function(self, name: str) -> dict[str, Any]:
        return dict(self.config["functions"][name])

    def environment(self, name: str) -> set[str]:
        return set(self.config["provider"]["environment"]) | set(self.function(name).get("environment", {}))

    def resolve_param(self, value: str) -> str:
        """``${param:x}`` inside a string, filled with the default of param ``x``."""
        return re.sub(r"\$\{param:(\w+)\}", lambda m: str(self.params[m.group(1)]), value)


@cache
def serverless() -> Serverless:
    config = load_cloudformation_yaml(REPO / "serverless.yml")
    loaded = Serverless(config)
    for included in config["resources"]:
        match = re.fullmatch(r"\$\{file\((.+)\)\}", included)
        assert match, included
        included_file = load_cloudformation_yaml(REPO / match.group(1))
        loaded.resources.update(included_file.get("Resources", {}))
        loaded.parameters.update(included_file.get("Parameters", {}))
        loaded.conditions.update(included_file.get("Conditions", {}))
    return loaded


def evaluate_condition(expression: Any, parameters: dict[str, str]) -> bool | str:
    """A CloudFormation condition (``!Not``, ``!Or``, ``!And``, ``!Equals``, ``!Ref`` to a stack
    parameter) as CloudFormation would decide it for these parameter values."""
    if isinstance(expression, str):
        return expression
    assert isinstance(expression, Tagged), expression
    args = expression.value
    if expression.tag == "Ref":
        return parameters[args]
    if expression.tag == "Equals":
        left, right = (evaluate_condition(arg, parameters) for arg in args)
        return left == right
    if expression.tag == "Not":
        (inner,) = args
        return not evaluate_condition(inner, parameters)
    if expression.tag == "Or":
        return any(evaluate_condition(arg, parameters) for arg in args)
    if expression.tag == "And":
        return all(evaluate_condition(arg, parameters) for arg in args)
    raise AssertionError(f"condition function {expression.tag} is not understood here")


# -- Huawei Cloud: infra/huawei/*.tf -------------------------------------------------------------

_HCL_OPTIONS = SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


@dataclass
class Terraform:
    resources: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    data: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    locals: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, dict[str, Any]] = field(default_factory=dict)
    providers: dict[str, dict[str, Any]] = field(default_factory=dict)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)

    def resource(self, kind: str, name: str) -> dict[str, Any]:
        return self.resources[kind][name]

    def default(self, variable: str) -> Any:
        return self.variables[variable]["default"]


def _merge_blocks(into: dict[str, dict[str, dict[str, Any]]], blocks: list[dict[str, Any]]) -> None:
    for block in blocks:
        for kind, named in block.items():
            for name, body in named.items():
                assert name not in into.setdefault(kind, {}), f"{kind}.{name} defined twice"
                into[kind][name] = body


def load_terraform(directory: Path) -> Terraform:
    loaded = Terraform()
    for path in sorted(directory.glob("*.tf")):
        with path.open(encoding="utf-8") as source:
            parsed = hcl2.load(source, serialization_options=_HCL_OPTIONS)
        _merge_blocks(loaded.resources, parsed.get("resource", []))
        _merge_blocks(loaded.data, parsed.get("data", []))
        for block in parsed.get("locals", []):
            loaded.locals.update(block)
        for block in parsed.get("variable", []):
            loaded.variables.update(block)
        for block in parsed.get("provider", []):
            loaded.providers.update(block)
        for block in parsed.get("output", []):
            loaded.outputs.update(block)
    return loaded


@cache
def terraform() -> Terraform:
    return load_terraform(HUAWEI)


def render_policy(name: str, values: dict[str, str]) -> dict[str, Any]:
    """A policy template as templatefile() renders it (plain ``${name}`` placeholders only)."""
    text = (HUAWEI / "policies" / f"{name}.json").read_text(encoding="utf-8")
    rendered = re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], text)
    assert "${" not in rendered, f"{name}.json uses template syntax this renderer does not know"
    document: dict[str, Any] = json.loads(rendered)
    return document


def reference(expression: str) -> str:
    """``${var.input_prefix}`` → ``var.input_prefix``; anything else stays as it is."""
    match = re.fullmatch(r"\$\{(.+)\}", expression)
    return match.group(1) if match else expression

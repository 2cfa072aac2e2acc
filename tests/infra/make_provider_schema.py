"""Write tests/infra/fixtures/huaweicloud_schema.json: the arguments (required or optional), nested
blocks and exported attributes of every resource and data source type infra/huawei uses, read from
the huaweicloud provider's own documentation at a release tag. The offline plan check
(test_huawei_plan.py) holds the Terraform against it, since neither Terraform nor its registry can
be reached from these machines.

    .venv/bin/python tests/infra/make_provider_schema.py PROVIDER_CHECKOUT [--tag v1.97.1]

PROVIDER_CHECKOUT is a git clone of github.com/huaweicloud/terraform-provider-huaweicloud. Run it
again after adding a resource type to infra/huawei or raising the provider version.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HUAWEI = REPO / "infra" / "huawei"
OUT = Path(__file__).resolve().parent / "fixtures" / "huaweicloud_schema.json"
# hashicorp/random's random_password, from its docs/resources/password.md ("Required": length;
# the rest optional; "Read-Only": id, result). It is the only non-huaweicloud type used.
RANDOM_PASSWORD = {
    "arguments": {
        "length": True,
        **dict.fromkeys(
            [
                "keepers",
                "lower",
                "min_lower",
                "min_numeric",
                "min_special",
                "min_upper",
                "number",
                "numeric",
                "override_special",
                "special",
                "upper",
            ],
            False,
        ),
    },
    "blocks": {},
    "attributes": ["bcrypt_hash", "id", "result"],
    "source": "hashicorp/terraform-provider-random docs/resources/password.md",
}

_ITEM = re.compile(r"^\* `([a-z0-9_]+)` - \((Required|Optional)?")
_ATTRIBUTE_ITEM = re.compile(r"^\* `([a-z0-9_]+)` - ")
# "The `obs` block supports:", "The `logging` object supports the following:",
# "The `on_success` and the `on_failure` blocks support:".
_BLOCK = re.compile(
    r"^The (`[a-z0-9_]+`(?:,? (?:and )?(?:the )?`[a-z0-9_]+`)*) (?:blocks?|objects?) supports?\b"
)


def used_types() -> tuple[set[str], set[str]]:
    resources, data = set(), set()
    for path in HUAWEI.glob("*.tf"):
        text = path.read_text(encoding="utf-8")
        resources |= set(re.findall(r'^resource "(huaweicloud_[a-z0-9_]+)"', text, flags=re.MULTILINE))
        data |= set(re.findall(r'^data "(huaweicloud_[a-z0-9_]+)"', text, flags=re.MULTILINE))
    return resources, data


def parse(markdown: str) -> dict[str, Any]:
    """Arguments, nested blocks and attributes of one documentation page."""
    arguments: dict[str, bool] = {}
    blocks: dict[str, dict[str, bool]] = {}
    attributes: set[str] = set()
    nested_attributes: dict[str, list[str]] = {}
    section = None
    block: list[str] = []
    for line in markdown.splitlines():
        if line.startswith("## "):
            title = line[3:].strip().lower()
            section = (
                "arguments"
                if title.startswith("argument")
                else "attributes"
                if "attribute" in title
                else None
            )
            block = []
            continue
        heading = _BLOCK.match(line)
        if heading and section:
            names = re.findall(r"`([a-z0-9_]+)`", heading.group(1))
            for name in names:
                if section == "arguments":
                    blocks.setdefault(name, {})
                else:
                    nested_attributes.setdefault(name, [])
            block = names
            continue
        if section == "arguments":
            item = _ITEM.match(line)
            if item:
                required = item.group(2) == "Required"
                for target in [blocks[name] for name in block] if block else [arguments]:
                    target[item.group(1)] = required
        elif section == "attributes":
            item = _ATTRIBUTE_ITEM.match(line)
            if item:
                if block:
                    for name in block:
                        nested_attributes[name].append(item.group(1))
                else:
                    attributes.add(item.group(1))
    attributes.add("id")
    return {
        "arguments": arguments,
        "blocks": blocks,
        "attributes": sorted(attributes),
        "nested_attributes": {name: sorted(set(names)) for name, names in nested_attributes.items()},
    }


def page(checkout: Path, tag: str, path: str) -> str:
    return subprocess.run(
        ["git", "-C", str(checkout), "show", f"{tag}:{path}"], capture_output=True, text=True, check=True
    ).stdout


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--tag", default="v1.97.1")
    options = parser.parse_args()
    commit = subprocess.run(
        ["git", "-C", str(options.checkout), "rev-parse", f"{options.tag}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    resources, data = used_types()
    schema: dict[str, Any] = {
        "provider": "huaweicloud/huaweicloud",
        "version": options.tag.removeprefix("v"),
        "commit": commit,
        "source": "docs/resources/*.md and docs/data-sources/*.md of "
        "github.com/huaweicloud/terraform-provider-huaweicloud",
        "resources": {"random_password": RANDOM_PASSWORD},
        "data": {},
    }
    for kind in sorted(resources):
        schema["resources"][kind] = parse(
            page(options.checkout, options.tag, f"docs/resources/{kind[12:]}.md")
        )
    for kind in sorted(data):
        schema["data"][kind] = parse(page(options.checkout, options.tag, f"docs/data-sources/{kind[12:]}.md"))
    OUT.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"make_provider_schema.py: {len(resources)} resource and {len(data)} data source types -> {OUT}")


if __name__ == "__main__":
    main()

"""The README's settings tables name every setting the functions and the operator commands read
(a user who cannot find a setting cannot set it: `BUCKETSCRIBE_AWS_ENDPOINT_URL` was missing)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bucketscribe.cli.job_stores import JOB_STORE_SETTINGS
from bucketscribe.cli.local_stacks import RUNTIME_DIR_VARIABLE
from bucketscribe.clouds.aws.settings import AwsSettings
from bucketscribe.clouds.huawei.settings import HuaweiSettings
from bucketscribe.settings import EnvironmentSettings, Settings

pytestmark = pytest.mark.unit
README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _settings_tables() -> str:
    """The rows of the README's tables under "## Settings" (up to the next section)."""
    section = README.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `"))


def _named(variable: str, rows: str) -> bool:
    """A row names ``BUCKETSCRIBE_X_Y`` in full or, after another of its own, as `_X_Y`."""
    short = "_" + variable.removeprefix("BUCKETSCRIBE_")
    return f"`{variable}`" in rows or re.search(rf"`{re.escape(short)}`", rows) is not None


@pytest.mark.parametrize("settings", [Settings, AwsSettings, HuaweiSettings])
def test_every_setting_of_the_deployed_code_has_a_row(settings: type[EnvironmentSettings]) -> None:
    rows = _settings_tables()
    missing = [
        f"{settings.env_prefix}{field.upper()}"
        for field in settings.model_fields
        if not _named(f"{settings.env_prefix}{field.upper()}", rows)
    ]
    assert not missing, f"not in the README's settings tables: {missing}"


def test_what_the_operator_commands_read_has_a_row() -> None:
    rows = _settings_tables()
    for variable in (*JOB_STORE_SETTINGS, "BUCKETSCRIBE_AWS_ENDPOINT_URL", RUNTIME_DIR_VARIABLE):
        assert _named(variable, rows), variable

"""Secrets come from the environment or a secret store, never from code or logs.

A setting ``X`` may be given directly (local runs, tests) or as ``X_SECRET_NAME``,
the name of an AWS Secrets Manager secret read through Powertools parameters
(cached for five minutes, so rotation takes effect without a redeploy).
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

SECRET_CACHE_SECONDS = 300


class MissingSecret(RuntimeError):
    """A required secret is configured nowhere: refuse to run rather than run open."""


def resolve_secret(value: SecretStr | None, secret_name: str | None, *, what: str) -> str:
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if secret_name:
        from aws_lambda_powertools.utilities import parameters

        fetched = parameters.get_secret(secret_name, max_age=SECRET_CACHE_SECONDS)
        if isinstance(fetched, bytes):
            fetched = fetched.decode("utf-8")
        if fetched:
            return str(fetched)
    raise MissingSecret(f"{what} is not configured: set it in the environment or name a secret store entry")


def resolve_json_secret(secret_name: str, *, what: str) -> dict[str, Any]:
    raw = resolve_secret(None, secret_name, what=what)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MissingSecret(f"{what} in secret {secret_name!r} is not JSON") from exc
    if not isinstance(data, dict):
        raise MissingSecret(f"{what} in secret {secret_name!r} is not a JSON object")
    return data

"""The secret-store port: secrets come from the environment or a secret store, never from code or logs.

A setting ``X`` may be given directly (local runs, tests) or as ``X_SECRET_NAME``, the name of a
secret in the store of the cloud the function runs in (``clouds/<name>/secrets.py``). A store
caches each value for five minutes, so a rotation takes effect without a redeploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Protocol

from pydantic import SecretStr

SECRET_CACHE_SECONDS = 300


class MissingSecret(RuntimeError):
    """A required secret is configured nowhere: refuse to run rather than run open."""


class SecretStore(Protocol):
    def get(self, name: str) -> str | None:
        """The current value of secret ``name``; ``None`` when the store holds no value for it."""
        ...


class NoSecretStore:
    """Where every secret is given directly (the local stack, tests): no name resolves."""

    def get(self, name: str) -> str | None:
        return None


class LazySecretStore:
    """A store built on the first lookup: a deployment that gives every secret directly never
    needs its cloud's store configured (nor pays for its SDK)."""

    def __init__(self, build: Callable[[], SecretStore]) -> None:
        self._build = build
        self._store: SecretStore | None = None

    def get(self, name: str) -> str | None:
        if self._store is None:
            self._store = self._build()
        return self._store.get(name)


def resolve_secret(value: SecretStr | None, secret_name: str | None, *, what: str, store: SecretStore) -> str:
    """A secret given directly (local runs, tests), else the value of ``secret_name`` in ``store``."""
    if value is not None and value.get_secret_value():
        return value.get_secret_value()
    if secret_name:
        fetched = store.get(secret_name)
        if fetched:
            return fetched
    raise MissingSecret(f"{what} is not configured: set it in the environment or name a secret store entry")


def resolve_json_secret(secret_name: str, *, what: str, store: SecretStore) -> dict[str, Any]:
    raw = resolve_secret(None, secret_name, what=what, store=store)
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise MissingSecret(f"{what} in secret {secret_name!r} is not JSON") from exc
    if not isinstance(data, dict):
        raise MissingSecret(f"{what} in secret {secret_name!r} is not a JSON object")
    return data

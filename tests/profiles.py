"""Profiles for tests, made the way a deployment loads them: checked by the provider registry (the
default provider filled in, each provider's options block checked by that provider)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bucketscribe.domain.profile import Profile, ProfileSet
from bucketscribe.providers.registry import load_profiles


def _plain(value: Any) -> Any:
    return value.model_dump(exclude_unset=True) if isinstance(value, BaseModel) else value


def profile(**fields: Any) -> Profile:
    """One profile (``sis=SisOptions(...)`` or ``sis={...}`` alike)."""
    (made,) = load_profiles([{name: _plain(value) for name, value in fields.items()}]).profiles
    return made


def profile_set(*profiles: dict[str, Any]) -> ProfileSet:
    return load_profiles([{name: _plain(value) for name, value in p.items()} for p in profiles])

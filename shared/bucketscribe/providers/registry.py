"""Which providers this build knows: the one file that lists them (a new provider is a new folder
under ``providers/`` and one line here).

The registry loads the profiles (each provider checks its own options), finds the contradictions
between the settings and what the providers in use promise, and builds the adapters lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from importlib import import_module
from typing import Any

from bucketscribe.domain.profile import Profile, ProfileSet
from bucketscribe.ports.provider import Provider
from bucketscribe.ports.secrets import SecretStore
from bucketscribe.providers.plugin import ProviderPlugin
from bucketscribe.settings import Settings

# The providers this build knows, one line each: the folder under ``providers/`` whose
# ``PLUGINS`` it offers (a folder may offer several services: file and real-time recognition).
FOLDERS = (
    "sis",
    "dashscope",
)


def _offered_by(folder: str) -> tuple[ProviderPlugin, ...]:
    plugins: tuple[ProviderPlugin, ...] = import_module(f"bucketscribe.providers.{folder}").PLUGINS
    return plugins


PLUGINS: dict[str, ProviderPlugin] = {
    plugin.name: plugin for folder in FOLDERS for plugin in _offered_by(folder)
}
# The provider of a profile that names none (and of the one profile a deployment without any has).
DEFAULT_PROVIDER = "sis"


def plugin(name: str) -> ProviderPlugin:
    try:
        return PLUGINS[name]
    except KeyError:
        raise LookupError(f"unknown provider {name!r} (known: {', '.join(sorted(PLUGINS))})") from None


def load_profiles(
    raw: list[dict[str, Any]] | None, plugins: Mapping[str, ProviderPlugin] = PLUGINS
) -> ProfileSet:
    """The profiles as written, checked: each names a known provider (the default where it names
    none), carries only option blocks a provider knows, and each block passes its provider."""
    known_blocks = {p.options_key: p for p in plugins.values()}
    profiles = []
    for index, data in enumerate(raw if raw is not None else [{}]):
        profile = Profile.model_validate({"provider": DEFAULT_PROVIDER, **data})
        where = f"profile {profile.name!r}" if "name" in data else f"profile {index + 1}"
        own = plugins.get(profile.provider)
        if own is None:
            raise ValueError(
                f"{where}: unknown provider {profile.provider!r} (known: {', '.join(sorted(plugins))})"
            )
        unknown = sorted(profile.option_keys - known_blocks.keys())
        if unknown:
            raise ValueError(f"{where}: {', '.join(unknown)} is neither a setting nor a provider's options")
        mode = "realtime" if own.streams else "batch"
        if "mode" in data and data["mode"] != mode:
            raise ValueError(
                f"{where}: mode {data['mode']!r} does not go with provider {profile.provider!r}, "
                f"which is {mode} only"
            )
        profile = profile.model_copy(update={"mode": mode})
        for key in profile.option_keys | {own.options_key}:
            try:
                known_blocks[key].check_options(profile)
            except ValueError as error:
                raise ValueError(f"{where}: {key}: {_first_line(error)}") from None
        profiles.append(profile)
    return ProfileSet(profiles=profiles)


def _first_line(error: ValueError) -> str:
    errors = getattr(error, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else str(first["msg"])
    return str(error).splitlines()[0]


def providers_used(profiles: ProfileSet) -> set[str]:
    """Every provider the profiles' uploads may go to."""
    used: set[str] = set()
    for profile in profiles.profiles:
        used |= {profile.provider, *plugin(profile.provider).also_serves(profile)}
    return used


def settings_problems(settings: Settings, profiles: ProfileSet) -> list[str]:
    """What in the settings contradicts what the providers in use promise."""
    problems = []
    for name in sorted(providers_used(profiles)):
        used = plugin(name)
        retention = used.result_retention
        if retention is not None and settings.job_deadline_s > retention.total_seconds():
            problems.append(
                f"BUCKETSCRIBE_JOB_DEADLINE_S ({settings.job_deadline_s}) is longer than {name} keeps "
                f"results ({int(retention.total_seconds())} s): a job could wait for a result already deleted"
            )
        problems.extend(used.settings_problems(settings))
    return problems


class LazyProviders(Mapping[str, Provider]):
    """Provider adapters built on first lookup (a request that never talks to a provider never
    reads its credentials)."""

    def __init__(self, factories: Mapping[str, Callable[[], Provider]]) -> None:
        self._factories = dict(factories)
        self._built: dict[str, Provider] = {}

    def __getitem__(self, name: str) -> Provider:
        if name not in self._built:
            self._built[name] = self._factories[name]()
        return self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def lazy_providers(
    settings: Settings, secrets: SecretStore, plugins: Mapping[str, ProviderPlugin] = PLUGINS
) -> LazyProviders:
    return LazyProviders(
        {name: (lambda p=p: p.build(settings, secrets)) for name, p in plugins.items()}  # type: ignore[misc]
    )


def longest_retention() -> timedelta:
    """The longest any provider keeps a finished result (a callback may come until then)."""
    return max((p.result_retention for p in PLUGINS.values() if p.result_retention), default=timedelta(0))

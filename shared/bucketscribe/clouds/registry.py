"""Which clouds this build runs on: the one file that lists them (a new cloud is a new folder under
``clouds/`` and one line here). ``BUCKETSCRIBE_CLOUD`` picks one."""

from __future__ import annotations

from importlib import import_module

from bucketscribe.clouds.plugin import CloudPlugin

# The clouds this build knows, one line each: the folder under ``clouds/`` whose ``CLOUD`` it offers.
FOLDERS = (
    "aws",
    "huawei",
)
# Where a deployment that does not say (``BUCKETSCRIBE_CLOUD`` unset) runs.
DEFAULT_CLOUD = "aws"


def _offered_by(folder: str) -> CloudPlugin:
    plugin: CloudPlugin = import_module(f"bucketscribe.clouds.{folder}").CLOUD
    return plugin


CLOUDS: dict[str, CloudPlugin] = {plugin.name: plugin for plugin in map(_offered_by, FOLDERS)}


def upload_schemes() -> list[str]:
    """How a user writes an object's address on each cloud (``s3``, …), in the registry's order."""
    return [plugin.uri_scheme for plugin in CLOUDS.values()]


def cloud(name: str | None) -> CloudPlugin:
    """The cloud called ``name`` (``None``: the default one)."""
    try:
        return CLOUDS[name or DEFAULT_CLOUD]
    except KeyError:
        raise LookupError(
            f"unknown cloud {name!r} (BUCKETSCRIBE_CLOUD: {', '.join(sorted(CLOUDS))})"
        ) from None

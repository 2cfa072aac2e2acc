"""Which clouds this build runs on: the one file that lists them (a new cloud is a new folder under
``clouds/`` and one line here). ``BUCKETSCRIBE_CLOUD`` picks one."""

from __future__ import annotations

from bucketscribe.clouds import aws, huawei
from bucketscribe.clouds.plugin import CloudPlugin

CLOUDS: dict[str, CloudPlugin] = {cloud.name: cloud for cloud in (aws.CLOUD, huawei.CLOUD)}


def upload_schemes() -> list[str]:
    """How a user writes an object's address on each cloud (``s3``, …), in the registry's order."""
    return [plugin.uri_scheme for plugin in CLOUDS.values()]


def cloud(name: str) -> CloudPlugin:
    try:
        return CLOUDS[name]
    except KeyError:
        raise LookupError(
            f"unknown cloud {name!r} (BUCKETSCRIBE_CLOUD: {', '.join(sorted(CLOUDS))})"
        ) from None

"""Downloading the media a job names, as the services do: plain HTTP(S) GET, with a size cap."""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request


class MediaUnreachable(Exception):
    """The URL could not be downloaded (bad scheme, refused, 4xx/5xx, timeout)."""


class MediaTooLarge(Exception):
    """The file is larger than the service accepts."""


def fetch_media(url: str, *, max_bytes: int, timeout_s: float, user_agent: str) -> bytes:
    """The whole body of ``url``; reads at most ``max_bytes + 1`` bytes to tell a too-large file."""
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    if scheme not in ("http", "https"):
        raise MediaUnreachable(f"unsupported URL scheme {scheme!r}")
    request = urllib.request.Request(url, headers={"User-Agent": user_agent})  # noqa: S310 (scheme checked)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310 (scheme checked)
            data = bytes(response.read(max_bytes + 1))
    except (urllib.error.URLError, OSError, ValueError) as error:
        raise MediaUnreachable(str(error)) from error
    if len(data) > max_bytes:
        raise MediaTooLarge(f"{url} is larger than {max_bytes} bytes")
    return data

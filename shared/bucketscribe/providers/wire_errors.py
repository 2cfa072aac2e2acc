"""Did a failed HTTP request reach the server? The line between "retry it" and "find out first".

A request that never left (the connection was refused, the name did not resolve, the TLS
handshake or the connect timed out) certainly created nothing. One that failed later (a read
timeout, a connection reset after the body was sent, a 5xx answer) may have taken effect at the
provider, so a submission that failed that way must be resolved from evidence, not re-sent.
Both provider SDKs send with ``requests``; one of them wraps some of its errors.
"""

from __future__ import annotations

_NOT_SENT_MARKERS = (
    "NewConnectionError",
    "Failed to establish a new connection",
    "Connection refused",
    "Name or service not known",
    "getaddrinfo failed",
    "No route to host",
)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def request_may_have_arrived(exc: BaseException) -> bool:
    """``False`` only when the failure proves the request never reached the server."""
    import requests

    for link in _chain(exc):
        if isinstance(link, requests.exceptions.ConnectTimeout | requests.exceptions.SSLError):
            return False
        if isinstance(link, requests.exceptions.ReadTimeout | requests.exceptions.ChunkedEncodingError):
            return True
    text = " ".join(f"{type(link).__name__}: {link}" for link in _chain(exc))
    return not any(marker in text for marker in _NOT_SENT_MARKERS)


def status_may_have_taken_effect(status: int) -> bool:
    """An HTTP answer that does not prove the request was refused before it took effect."""
    return status >= 500

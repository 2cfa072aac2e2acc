"""The webhook port over HTTP(S): the standard library's ``http.client``, signed with the
``standardwebhooks`` package (imported on the first delivery), to checked addresses only.

One attempt is one POST, and a 307/308 redirect (which keeps the method and the body) is followed
up to ``MAX_REDIRECTS`` times, each new address checked as the first was; other redirects are
not followed, since they would turn the POST into a GET without the event.

A receiver that timed out is not tried again by this process for ``TIMEOUT_COOL_DOWN_S``: a
finishing worker that ends a hundred jobs for one profile then waits once, not a hundred times,
and leaves the rest to the reconciler's schedule.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
from collections.abc import Callable
from datetime import datetime
from math import floor
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from pydantic import SecretStr

from bucketscribe.domain.clock import utc_now
from bucketscribe.domain.job_events import JobEvent
from bucketscribe.ports.secrets import MissingSecret, SecretStore, resolve_secret
from bucketscribe.ports.webhooks import WebhookNotDelivered, WebhookRefused
from bucketscribe.webhooks.addresses import Resolver, checked_addresses, resolve_host

if TYPE_CHECKING:
    from standardwebhooks import Webhook

Connector = Callable[[tuple[str, int], float], socket.socket]
"""((address, port), timeout) → a connected socket: where a checked address is really dialled."""

MAX_REDIRECTS = 3
FOLLOWED_REDIRECTS = frozenset({307, 308})
TIMEOUT_COOL_DOWN_S = 60.0
# What is read of a receiver's answer: its status is all that counts.
MAX_ANSWER_BYTES = 64 * 1024
USER_AGENT = "bucketscribe-webhooks/1"
# What a Standard Webhooks signing secret starts with (then base64 of the key).
SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret


def dial(address: tuple[str, int], timeout: float) -> socket.socket:
    return socket.create_connection(address, timeout)


class _PinnedConnection(http.client.HTTPConnection):
    """A plain connection to the address that was checked (never the name resolved again)."""

    def __init__(self, host: str, port: int, address: str, *, timeout: float, connect: Connector) -> None:
        super().__init__(host, port, timeout=timeout)
        self._create_connection = lambda _, timeout, __=None: connect((address, port), timeout)


class _PinnedTlsConnection(http.client.HTTPSConnection):
    """TLS to the address that was checked; the certificate is verified against the URL's host."""

    def __init__(
        self,
        host: str,
        port: int,
        address: str,
        *,
        timeout: float,
        connect: Connector,
        context: ssl.SSLContext,
    ) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._create_connection = lambda _, timeout, __=None: connect((address, port), timeout)


class HttpWebhookSender:
    def __init__(
        self,
        secrets: SecretStore,
        *,
        default_secret: SecretStr | None = None,
        default_secret_name: str | None = None,
        allow_private: bool = False,
        timeout_s: float = 5.0,
        resolve: Resolver = resolve_host,
        connect: Connector = dial,
        tls: ssl.SSLContext | None = None,
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._secrets = secrets
        self._default_secret = default_secret
        self._default_secret_name = default_secret_name
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._resolve = resolve
        self._connect = connect
        self._tls = tls
        # The signing time is the real time of the attempt: receivers refuse a timestamp more than
        # a few minutes off their own clock.
        self._clock = clock
        self._monotonic = monotonic
        self._timed_out: dict[str, float] = {}
        self._lock = threading.Lock()

    def send(self, url: str, secret_name: str | None, event: JobEvent) -> None:
        signer = self._signer(secret_name)
        body = event.body()
        signed_at = self._clock()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": event.id,
            "webhook-timestamp": str(floor(signed_at.timestamp())),
            "webhook-signature": signer.sign(event.id, signed_at, body),
        }
        for _ in range(MAX_REDIRECTS + 1):
            status, location = self._post_once(url, headers, body)
            if 200 <= status < 300:
                return
            if status in FOLLOWED_REDIRECTS and location:
                url = urljoin(url, location)
                continue
            if 300 <= status < 400:
                raise WebhookNotDelivered(
                    f"the receiver answered HTTP {status}; only 307 and 308 redirects are followed"
                )
            raise WebhookNotDelivered(f"the receiver answered HTTP {status}")
        raise WebhookNotDelivered(f"more than {MAX_REDIRECTS} redirects")

    def _signer(self, secret_name: str | None) -> Webhook:
        from standardwebhooks import Webhook

        given = None if secret_name else self._default_secret
        what = f"the webhook signing secret{f' {secret_name!r}' if secret_name else ''}"
        secret = resolve_secret(
            given, secret_name or self._default_secret_name, what=what, store=self._secrets
        )
        if not secret.startswith(SECRET_PREFIX):
            # A deploy's placeholder, say: never sign with it. Tried again until it is filled in.
            raise MissingSecret(f"{what} holds no {SECRET_PREFIX}… value yet (Standard Webhooks)")
        try:
            return Webhook(secret)
        except Exception as error:
            # Not the value (it is the secret): what is wrong with it.
            raise WebhookRefused(
                "the webhook signing secret is not a Standard Webhooks secret (whsec_ and base64): "
                f"{type(error).__name__}"
            ) from None

    def _post_once(self, url: str, headers: dict[str, str], body: bytes) -> tuple[int, str | None]:
        parts = urlsplit(url)
        host = parts.hostname
        if parts.scheme not in ("https", "http") or not host:
            raise WebhookRefused("refused: the webhook URL is not an http(s) URL with a host")
        if parts.scheme == "http" and not self._allow_private:
            raise WebhookRefused(
                f"refused: http://{host} is not HTTPS (BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE=true allows it)"
            )
        port = parts.port or (443 if parts.scheme == "https" else 80)
        self._not_timed_out_lately(host)
        try:
            addresses = checked_addresses(
                host, port, allow_private=self._allow_private, resolve=self._resolve
            )
        except OSError as error:
            raise WebhookNotDelivered(str(error)) from None
        connection = self._connection(parts.scheme, host, port, addresses[0])
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            connection.request("POST", path, body=body, headers=headers)
            answer = connection.getresponse()
            answer.read(MAX_ANSWER_BYTES)
            return answer.status, answer.getheader("location")
        except TimeoutError:
            with self._lock:
                self._timed_out[host] = self._monotonic()
            raise WebhookNotDelivered(f"{host} did not answer within {self._timeout_s:g} s") from None
        except (OSError, http.client.HTTPException) as error:
            raise WebhookNotDelivered(f"{host}: {type(error).__name__}: {error}") from None
        finally:
            connection.close()

    def _not_timed_out_lately(self, host: str) -> None:
        with self._lock:
            since = self._timed_out.get(host)
        if since is not None and self._monotonic() - since < TIMEOUT_COOL_DOWN_S:
            raise WebhookNotDelivered(
                f"not tried: {host} timed out {self._monotonic() - since:.0f} s ago in this worker"
            )

    def _connection(self, scheme: str, host: str, port: int, address: str) -> http.client.HTTPConnection:
        if scheme == "http":
            return _PinnedConnection(host, port, address, timeout=self._timeout_s, connect=self._connect)
        return _PinnedTlsConnection(
            host,
            port,
            address,
            timeout=self._timeout_s,
            connect=self._connect,
            context=self._tls or ssl.create_default_context(),
        )

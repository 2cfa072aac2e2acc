"""The webhook port: one signed POST of a job's event to the receiver a profile names.

Signing follows Standard Webhooks: ``webhook-id`` (the event's id, the same on every attempt),
``webhook-timestamp`` (when this attempt was signed) and ``webhook-signature``
(``v1,<base64 HMAC-SHA256>`` over ``id.timestamp.body`` with the ``whsec_…`` secret), so any
Standard Webhooks verifier checks a delivery. The receiver's address is checked before anything
is sent: see ``WebhookRefused``.
"""

from __future__ import annotations

from typing import Protocol

from bucketscribe.domain.job_events import JobEvent


class WebhookRefused(Exception):
    """Not sent, and not worth sending again as configured: the URL is not HTTPS, or its host (or
    a redirect's) resolves to a private, loopback, link-local, multicast or metadata address,
    none of which a deployment may be made to call (unless BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE)."""


class WebhookNotDelivered(Exception):
    """Tried and not taken: an answer other than 2xx, a timeout, no connection. Tried again later."""


class WebhookSender(Protocol):
    def send(self, url: str, secret_name: str | None, event: JobEvent) -> None:
        """POST ``event.body()`` to ``url``, signed with the secret the secret store holds under
        ``secret_name`` (``None``: the deployment's own webhook secret); returns once the receiver
        answered 2xx. Raises ``WebhookRefused``, ``WebhookNotDelivered``, or ``MissingSecret`` when
        no signing secret is configured."""
        ...

"""Callback credentials: the only things that let a callback or push in.

A provider that calls a URL back need not sign its callbacks, so each attempt's
callback URL, ``<base>/callbacks/<provider>/<job id>``, carries ``attempt``, an expiry ``exp``
(epoch seconds) and ``token = HMAC-SHA256(secret, "<provider>-callback:<job id>:<attempt>:<exp>")``.
A token names one attempt of one job at one provider, so a callback proves which submission it
belongs to even when the submit answer was lost; it stops working after ``exp`` (the job's
retention window). Two secrets are
accepted during a rotation (the current one signs). Verification is constant-time, works on
bytes (any text a client sends is safe to compare) and fails closed. Even an authentic callback
is only a hint: the result is always re-fetched from the provider's API.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlencode

from pydantic import BaseModel

MAX_TOKEN_LENGTH = 128


class CallbackClaim(BaseModel):
    """What a callback URL says about itself (unverified until ``CallbackSigner.verify``)."""

    provider: str
    job_id: str
    attempt: int
    expires: int
    token: str

    @classmethod
    def from_query(cls, provider: str, job_id: str, query: Mapping[str, str]) -> CallbackClaim | None:
        """The claim in a callback's query string; ``None`` when any part is missing or malformed."""
        attempt, expires, token = query.get("attempt", ""), query.get("exp", ""), query.get("token", "")
        if not (attempt.isascii() and attempt.isdigit() and expires.isascii() and expires.isdigit()):
            return None
        if not token or len(token) > MAX_TOKEN_LENGTH or len(attempt) > 6 or len(expires) > 12:
            return None
        return cls(provider=provider, job_id=job_id, attempt=int(attempt), expires=int(expires), token=token)


class CallbackSigner:
    def __init__(self, secret: bytes, *, previous: bytes | None = None) -> None:
        if len(secret) < 16 or (previous is not None and len(previous) < 16):
            raise ValueError("a callback secret must be at least 16 bytes")
        self._secrets = [secret] if previous is None else [secret, previous]

    @staticmethod
    def _mac(secret: bytes, provider: str, job_id: str, attempt: int, expires: int) -> bytes:
        message = f"{provider}-callback:{job_id}:{attempt}:{expires}".encode()
        return hmac.new(secret, message, hashlib.sha256).hexdigest().encode()

    def token_for(self, provider: str, job_id: str, attempt: int, expires: int) -> str:
        return self._mac(self._secrets[0], provider, job_id, attempt, expires).decode()

    def verify(self, claim: CallbackClaim | None, now: datetime) -> bool:
        if claim is None or claim.expires < now.timestamp():
            return False
        presented = claim.token.encode("utf-8", errors="replace")
        matches = [
            hmac.compare_digest(
                self._mac(secret, claim.provider, claim.job_id, claim.attempt, claim.expires), presented
            )
            for secret in self._secrets
        ]
        return any(matches)

    def callback_url(self, base_url: str, provider: str, job_id: str, attempt: int, expires: datetime) -> str:
        """Where ``provider`` calls back when attempt ``attempt`` of job ``job_id`` ends."""
        exp = int(expires.timestamp())
        token = self.token_for(provider, job_id, attempt, exp)
        query = urlencode({"attempt": attempt, "exp": exp, "token": token})
        return f"{base_url}/callbacks/{quote(provider, safe='')}/{quote(job_id, safe='')}?{query}"


def same_secret(presented: str | None, expected: str) -> bool:
    """Constant-time comparison of a presented credential (any text) with the expected one."""
    if not presented:
        return False
    return hmac.compare_digest(presented.encode("utf-8", errors="replace"), expected.encode("utf-8"))


def stale(sent_at: datetime | None, now: datetime, *, max_skew_s: int = 60) -> str | None:
    """Why a pushed event's send time makes it a possible replay, or ``None`` when it is fresh."""
    if sent_at is None:
        return "no usable timestamp"
    skew = abs((now - sent_at).total_seconds())
    if skew > max_skew_s:
        return f"timestamp is {skew:.0f} s away from now (more than {max_skew_s} s)"
    return None

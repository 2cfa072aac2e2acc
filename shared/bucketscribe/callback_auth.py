"""Per-job callback tokens: the only thing that lets a callback in.

SIS documents no signature on its callbacks, so each job's callback URL carries
``token = HMAC-SHA256(secret, "sis-callback:" + job_id)``. Verification is
constant-time and fails closed. Even an authentic callback is only a hint:
the result is always re-fetched from the provider's API.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from urllib.parse import quote


class CallbackSigner:
    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the callback secret must be at least 16 bytes")
        self._secret = secret

    def token_for(self, job_id: str, *, purpose: str = "sis-callback") -> str:
        return hmac.new(self._secret, f"{purpose}:{job_id}".encode(), hashlib.sha256).hexdigest()

    def verify(self, job_id: str, token: str | None, *, purpose: str = "sis-callback") -> bool:
        if not token:
            return False
        return hmac.compare_digest(self.token_for(job_id, purpose=purpose), token)

    def sis_callback_url(self, base_url: str, job_id: str) -> str:
        return f"{base_url}/callbacks/sis/{quote(job_id, safe='')}?token={self.token_for(job_id)}"


def push_refusal(
    presented_token: str | None,
    expected_token: str,
    sent_at: datetime | None,
    now: datetime,
    *,
    max_skew_s: int = 60,
) -> str | None:
    """Why a pushed event must be refused, or ``None`` when it may be processed.

    The token is the secret the EventBridge connection sends in a header (constant-time
    compare); the send time must be within ``max_skew_s`` of ``now`` (replay protection).
    """
    if not presented_token or not hmac.compare_digest(presented_token.encode(), expected_token.encode()):
        return "missing or wrong push credential"
    if sent_at is None:
        return "no timestamp"
    skew = abs((now - sent_at).total_seconds())
    if skew > max_skew_s:
        return f"timestamp is {skew:.0f} s away from now (more than {max_skew_s} s)"
    return None

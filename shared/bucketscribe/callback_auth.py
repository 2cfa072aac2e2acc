"""Per-job callback tokens: the only thing that lets a callback in.

SIS documents no signature on its callbacks, so each job's callback URL carries
``token = HMAC-SHA256(secret, "sis-callback:" + job_id)``. Verification is
constant-time and fails closed. Even an authentic callback is only a hint:
the result is always re-fetched from the provider's API.
"""

from __future__ import annotations

import hashlib
import hmac
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

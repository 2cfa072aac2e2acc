"""DashScope's error answers: ``{"request_id", "code", "message"}`` with an HTTP status."""

from __future__ import annotations

from pydantic import ValidationError

_THROTTLING_MESSAGE = "Requests rate limit exceeded, please try again later."
INTERNAL_ERROR_MESSAGE = "An internal error has occured, please try again later or contact service support."


class DashScopeError(Exception):
    """An error DashScope reports as ``{"request_id","code","message"}`` with an HTTP status."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def throttled(cls) -> DashScopeError:
        return cls(429, "Throttling.RateQuota", _THROTTLING_MESSAGE)

    @classmethod
    def for_status(cls, status: int) -> DashScopeError:
        """The body DashScope answers with for an injected failure of this status."""
        if status == 429:
            return cls.throttled()
        if status >= 500:
            return cls(status, "InternalError", INTERNAL_ERROR_MESSAGE)
        if status == 401:
            return cls(401, "InvalidApiKey", "Invalid API-key provided.")
        if status == 403:
            return cls(403, "AccessDenied", "Access denied.")
        return cls(status, "InvalidParameter", "Injected failure.")


def describe_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else str(first["msg"])

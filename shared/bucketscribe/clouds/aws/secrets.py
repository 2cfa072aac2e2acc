"""AWS Secrets Manager, the AWS cloud's secret store, read through Powertools parameters."""

from __future__ import annotations

from bucketscribe.ports.secrets import SECRET_CACHE_SECONDS

# What Secrets Manager answers for a name it does not hold, and for a secret with no value yet
# (no AWSCURRENT version): the port's "missing", so the function says which setting to fix.
_NOT_HELD = "ResourceNotFoundException"


class AwsSecretsManager:
    """AWS Secrets Manager through Powertools parameters, which cache each value."""

    def get(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities import parameters
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        try:
            fetched = parameters.get_secret(name, max_age=SECRET_CACHE_SECONDS)
        except GetParameterError as exc:
            if _not_held(exc):
                return None
            raise  # denied, throttled, unreachable: not the same as "not configured"
        if isinstance(fetched, bytes):
            fetched = fetched.decode("utf-8")
        return str(fetched) if fetched else None


def _not_held(exc: Exception) -> bool:
    # Powertools wraps the SDK's error in its own without chaining it (``raise ... (str(exc))``
    # inside the except block), so the SDK's error is the context, its code in its response.
    cause = exc.__cause__ or exc.__context__
    code = getattr(cause, "response", {}).get("Error", {}).get("Code")
    return code == _NOT_HELD or (code is None and _NOT_HELD in str(exc))

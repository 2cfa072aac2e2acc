"""AWS Secrets Manager, the AWS cloud's secret store, read through Powertools parameters."""

from __future__ import annotations

from bucketscribe.ports.secrets import SECRET_CACHE_SECONDS


class AwsSecretsManager:
    """AWS Secrets Manager through Powertools parameters, which cache each value."""

    def get(self, name: str) -> str | None:
        from aws_lambda_powertools.utilities import parameters

        fetched = parameters.get_secret(name, max_age=SECRET_CACHE_SECONDS)
        if isinstance(fetched, bytes):
            fetched = fetched.decode("utf-8")
        return str(fetched) if fetched else None

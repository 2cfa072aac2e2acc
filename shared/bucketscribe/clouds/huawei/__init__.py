"""Huawei Cloud: FunctionGraph entry points, OBS and CSMS adapters, the agency key, OBS trigger
events and FunctionGraph failure records (the job store is GeminiDB, through the DynamoDB wire)."""

from bucketscribe.clouds.huawei.plugin import CLOUD

__all__ = ["CLOUD"]

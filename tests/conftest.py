from __future__ import annotations

import os

# Set before any Powertools logger is created, so child loggers share the service name.
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "bucketscribe")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "bucketscribe")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
# Never let a test reach a real cloud account by accident.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

"""The HTTP API every cloud's callback function serves (each cloud's folder reads its gateway's
events into the ``routing.Request`` these routes take):

- ``POST /callbacks/{provider}/{job_id}?attempt=…&exp=…&token=…`` a provider that calls back says
  an attempt's job finished (``callbacks.py``);
- ``POST /callbacks/{provider}`` a provider's task-finished push (``pushes.py``);
- ``GET /jobs/{job_id}``, ``GET /jobs?bucket=&key=`` where a job stands, bearer token (``job_status.py``).
"""

from __future__ import annotations

from bucketscribe.entrypoints.http import callbacks, job_status, pushes
from bucketscribe.entrypoints.http.routing import Router

app = Router()
for routes in (callbacks.router, pushes.router, job_status.router):
    app.include(routes)

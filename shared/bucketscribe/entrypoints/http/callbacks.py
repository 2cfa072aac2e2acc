"""``POST /callbacks/sis/{job_id}?attempt=…&exp=…&token=…``: SIS says a job finished.

The token is checked before the body is read; the body only names a task id, which is bound to
the job only when proven (see ``complete_sis_callback``); the result is re-fetched from SIS.
"""

from __future__ import annotations

import json

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from bucketscribe.domain.callback_tokens import CallbackClaim
from bucketscribe.entrypoints.http.replies import NOT_FOUND, TRY_LATER, json_reply, oversized
from bucketscribe.observability import count, logger, record_completions
from bucketscribe.pipeline.complete import CompletionOutcome, complete_sis_callback
from bucketscribe.wiring import environment_ports

router = APIGatewayRouter()
MAX_TASK_ID_LENGTH = 128


@router.post("/callbacks/sis/<job_id>")
def sis_callback(job_id: str) -> Response:
    logger.set_correlation_id(job_id)
    count("CallbacksReceived")
    event = router.current_event
    ports = environment_ports()
    claim = CallbackClaim.from_query(job_id, event.query_string_parameters or {})
    if not ports.signer.verify(claim, ports.clock()):
        count("CallbacksRefused")
        logger.warning("Callback with a bad or expired token refused", extra={"job_id": job_id})
        return json_reply(404, NOT_FOUND)
    raw = event.body or ""
    if oversized(raw, event.path):
        return json_reply(413, {"message": "Payload too large"})
    try:
        completion = complete_sis_callback(job_id, claim, claimed_task_id(raw), ports)
    except Exception:
        # SIS or the job store could not be asked: a non-200 answer makes SIS call again.
        logger.exception("Could not handle the callback now", extra={"job_id": job_id})
        return json_reply(503, TRY_LATER)
    if completion.outcome is CompletionOutcome.UNKNOWN_JOB:
        count("CallbacksRefused")
        return json_reply(404, NOT_FOUND)
    record_completions([completion])
    return json_reply(200, {"result": completion.outcome.value})


def claimed_task_id(raw: str) -> str | None:
    """The SIS job id the body claims: only ever used to ask SIS, never trusted as a result."""
    try:
        body = json.loads(raw) if raw else None
    except (json.JSONDecodeError, RecursionError):
        return None
    claimed = body.get("job_id") if isinstance(body, dict) else None
    return claimed if isinstance(claimed, str) and 0 < len(claimed) <= MAX_TASK_ID_LENGTH else None

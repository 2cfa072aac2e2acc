"""``POST /callbacks/{provider}/{job_id}?attempt=…&exp=…&token=…``: a provider that calls back
(a ``CallsBack`` provider) says a job's attempt finished.

The token is checked before the body is read, and the body is read only when the attempt has no
task recorded (its submit answer was lost): then it is asked which task it names, which is bound
to the job only when proven (``pipeline.complete.complete_callback``). The result is always
re-fetched from the provider, so a result of any length completes through its callback: only the
claim in the URL and, rarely, a task id from the body are ever used.
"""

from __future__ import annotations

from bucketscribe.domain.callback_tokens import CallbackClaim
from bucketscribe.entrypoints.completions import record_completions
from bucketscribe.entrypoints.http.replies import NOT_FOUND, TRY_LATER, json_reply
from bucketscribe.entrypoints.http.routing import Reply, Request, Router
from bucketscribe.observability import count, logger
from bucketscribe.pipeline.complete import complete_callback
from bucketscribe.pipeline.steps.finish import CompletionOutcome
from bucketscribe.ports.provider import CallsBack
from bucketscribe.wiring import environment_ports

router = Router()


@router.route("POST", "/callbacks/<provider_name>/<job_id>")
def provider_callback(request: Request) -> Reply:
    provider_name, job_id = request.params["provider_name"], request.params["job_id"]
    logger.set_correlation_id(job_id)
    count("CallbacksReceived")
    ports = environment_ports()
    claim = CallbackClaim.from_query(provider_name, job_id, request.query)
    if provider_name not in ports.providers or not ports.signer.verify(claim, ports.clock()):
        count("CallbacksRefused")
        logger.warning("Callback with a bad or expired token refused", extra={"job_id": job_id})
        return json_reply(404, NOT_FOUND)
    provider = ports.provider(provider_name)
    if not isinstance(provider, CallsBack):
        count("CallbacksRefused")
        return json_reply(404, NOT_FOUND)

    def claimed_task() -> str | None:
        return provider.claimed_task(request.body)

    try:
        completion = complete_callback(claim, claimed_task, ports)
    except Exception:
        # The provider or the job store could not be asked: a non-200 answer makes it call again.
        logger.exception("Could not handle the callback now", extra={"job_id": job_id})
        return json_reply(503, TRY_LATER)
    if completion.outcome is CompletionOutcome.UNKNOWN_JOB:
        count("CallbacksRefused")
        return json_reply(404, NOT_FOUND)
    record_completions([completion])
    return json_reply(200, {"result": completion.outcome.value})

"""``POST /callbacks/{provider}``: a provider's task-finished push (a provider that ``Pushes``).

The connection's header token is checked first, in constant time; then the body is parsed by the
provider's own adapter, and the time it was sent (its transport's signing time where there is
one) must be within ``push_max_skew_s`` of now (replay protection). The task is fetched from the
provider and every job bound to it finished; the job store's finishing lease makes a repeated
push write nothing twice.
"""

from __future__ import annotations

from bucketscribe.domain.callback_tokens import same_secret, stale
from bucketscribe.domain.clock import utc_now
from bucketscribe.entrypoints.completions import record_completions
from bucketscribe.entrypoints.http.replies import NOT_FOUND, TRY_LATER, UNAUTHORIZED, json_reply, oversized
from bucketscribe.entrypoints.http.routing import RemainingTime, Reply, Request, Router
from bucketscribe.observability import count, logger
from bucketscribe.pipeline.complete import UnknownTask, complete_task
from bucketscribe.ports.provider import ProviderError, Pushes, PushRejected
from bucketscribe.ports.secrets import resolve_secret
from bucketscribe.wiring import environment_ports, environment_secrets, environment_settings

router = Router()
# Room for one more job after the check: a result download (timeout 8 s) and five small writes.
PUSH_MARGIN_MS = 15_000


def _push_token() -> str:
    # Not cached here: the secret store caches for five minutes, so a rotated token takes effect.
    settings = environment_settings()
    return resolve_secret(
        settings.push_token,
        settings.push_token_secret_name,
        what="the push token",
        store=environment_secrets(),
    )


@router.route("POST", "/callbacks/<provider_name>")
def provider_push(request: Request) -> Reply:
    provider_name = request.params["provider_name"]
    count("PushesReceived")
    settings = environment_settings()
    ports = environment_ports()
    if provider_name not in ports.providers:
        return json_reply(404, NOT_FOUND)
    provider = ports.provider(provider_name)
    if not isinstance(provider, Pushes):
        return json_reply(404, NOT_FOUND)
    if not same_secret(request.header(settings.push_token_header), _push_token()):
        return _refused("missing or wrong push credential")
    raw = request.body
    if oversized(raw, request.path):
        return json_reply(413, {"message": "Payload too large"})
    try:
        push = provider.parse_push(raw, request.header)
    except PushRejected as exc:
        return _refused(str(exc))
    staleness = stale(push.sent_at, utc_now(), max_skew_s=settings.push_max_skew_s)
    if staleness:
        return _refused(staleness)
    logger.set_correlation_id(push.task_id)
    return _finish(provider_name, push.task_id, request.context)


def _refused(reason: str) -> Reply:
    logger.warning("Push refused", extra={"reason": reason})
    count("CallbacksRefused")
    return json_reply(401, UNAUTHORIZED)


def _finish(provider_name: str, task_id: str, context: RemainingTime) -> Reply:
    try:
        completions = complete_task(
            provider_name,
            task_id,
            environment_ports(),
            out_of_time=lambda: context.get_remaining_time_in_millis() < PUSH_MARGIN_MS,
        )
    except UnknownTask:
        # Our record of the task did not come while the push waited for it (a submitter slowed by
        # a job-store outage, or a lost answer the reconciler resolves): a 503 is what every
        # pusher retries (a 4xx other than 429 may be final).
        logger.info("Push deferred: task not bound to a job yet", extra={"task_id": task_id})
        return json_reply(503, {"message": "Not ready; retry later"})
    except ProviderError as exc:
        logger.warning("Could not fetch the task", extra={"task_id": task_id, "code": exc.code})
        return json_reply(503, TRY_LATER)
    except Exception:
        logger.exception("Could not handle the push now", extra={"task_id": task_id})
        return json_reply(503, TRY_LATER)
    return json_reply(200, {"result": record_completions(completions)})

"""``GET /jobs/{job_id}`` and ``GET /jobs?bucket=B&key=K``: where a job stands (bearer token).

By key, the answer is the latest job for that key (each revision of an upload has its own) with
its attempts, plus the ids of the jobs of earlier revisions; no ETag needs digging out.
"""

from __future__ import annotations

from bucketscribe.domain.callback_tokens import same_secret
from bucketscribe.entrypoints.http.replies import NOT_FOUND, UNAUTHORIZED, json_reply
from bucketscribe.entrypoints.http.routing import Reply, Request, Router
from bucketscribe.observability import count
from bucketscribe.ports.secrets import resolve_secret
from bucketscribe.wiring import environment_ports, environment_secrets, environment_settings

router = Router()
MAX_KEY_CHARS = 1024


def _status_token() -> str:
    # Not cached here: the secret store caches for five minutes, so a rotated token takes effect.
    settings = environment_settings()
    return resolve_secret(
        settings.status_api_token,
        settings.status_api_token_secret_name,
        what="the status API token",
        store=environment_secrets(),
    )


def _authorized(request: Request) -> bool:
    header = request.header("Authorization") or ""
    scheme, _, presented = header.partition(" ")
    return scheme.lower() == "bearer" and same_secret(presented, _status_token())


@router.route("GET", "/jobs/<job_id>")
def get_job(request: Request) -> Reply:
    count("StatusRequests")
    if not _authorized(request):
        return json_reply(401, UNAUTHORIZED)
    from bucketscribe.pipeline.status import job_status  # its views: only for status requests

    view = job_status(request.params["job_id"], environment_ports().jobs)
    return json_reply(200, view.model_dump_json()) if view else json_reply(404, NOT_FOUND)


@router.route("GET", "/jobs")
def find_jobs(request: Request) -> Reply:
    count("StatusRequests")
    if not _authorized(request):
        return json_reply(401, UNAUTHORIZED)
    query = request.query
    bucket, key = query.get("bucket") or "", query.get("key") or ""
    if not bucket or not key or len(key) > MAX_KEY_CHARS or len(bucket) > 255:
        return json_reply(400, {"message": "give ?bucket=NAME&key=OBJECT_KEY (the key as uploaded)"})
    from bucketscribe.pipeline.status import jobs_for_upload  # its views: only for status requests

    found = jobs_for_upload(bucket, key, environment_ports().jobs)
    return json_reply(200, found.model_dump_json()) if found else json_reply(404, NOT_FOUND)

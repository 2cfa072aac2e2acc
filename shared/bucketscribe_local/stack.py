"""The embedded default: the whole pipeline on one machine, no cloud account.

One process runs moto server (S3 bucket → SQS notification → queue + DLQ,
DynamoDB tables), the SIS-compatible emulator backed by the offline speech
engine, an HTTP endpoint that serves the real callback handler as API Gateway
would, and a dispatcher feeding SQS batches to the real submit handler.

The handlers are configured exactly as in AWS: through ``BUCKETSCRIBE_*``
environment variables. Pointing the same settings at the real SIS endpoint
and credentials (see the README) is all it takes to use the real cloud.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import secrets
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, Field

from bucketscribe.domain.job import Job
from bucketscribe.domain.output_layout import OutputLayout
from bucketscribe.domain.upload import ObjectRef
from bucketscribe_local.aws_resources import (
    LOCAL_ACCESS_KEY,
    LOCAL_REGION,
    LOCAL_SECRET_KEY,
    LocalAwsNames,
    LocalAwsResources,
    provision,
)
from bucketscribe_local.faults import FaultPlan
from bucketscribe_local.pipeline_faults import PipelineFaultPlan, PipelineFaults
from bucketscribe_local.state_dir import StateCounts, StateDir

if TYPE_CHECKING:
    from bucketscribe_local.huawei_shape import HuaweiShape

log = logging.getLogger("bucketscribe_local")

# JSON for the emulators' FaultPlan (slow, failing or lost jobs), to try the pipeline's recovery by hand.
LOCAL_FAULTS_ENV = "BUCKETSCRIBE_LOCAL_FAULTS"

# The submit function's SQS event source as deployed: serverless.yml's params submitBatchSize,
# submitBatchingWindow and submitMaxConcurrency (tests/unit/test_local_options.py fails when they
# disagree). Uploads of one batch that share a DashScope profile ride in one task, so with the same
# batching the local stack's tasks per file and files/s predict the cloud's.
DEPLOYED_SUBMIT_BATCH_SIZE = 100
DEPLOYED_SUBMIT_BATCHING_WINDOW_S = 1.0
DEPLOYED_SUBMIT_MAX_CONCURRENCY = 5


class LocalStackOptions(BaseModel):
    names: LocalAwsNames = Field(default_factory=LocalAwsNames)
    output_prefix: str = "transcripts/"
    moto_port: int = 0
    # Where moto server (a process of its own) writes each request it serves, for a bench.
    moto_request_log: Path | None = None
    # Seconds moto answers each kind of request later (moto_process.LATENCY_KINDS): a bench's
    # model of the cloud's round trips.
    moto_latencies: dict[str, float] = Field(default_factory=dict)
    callback_port: int = 0
    sis_port: int = 0
    instant: bool = False
    # Instant too, but each recording gets its own words (digest_engine): forged or crossed
    # results show.
    digest: bool = False
    # The Whisper engine: a CTranslate2 Whisper model folder instead of the bundled base model,
    # and a spoken language to assume where a request names none (default: detected per file).
    engine_model: Path | None = None
    engine_language: str | None = None
    # The offline engine translates into English (transcribe --task translate).
    engine_translate: bool = False
    faults: FaultPlan = Field(default_factory=FaultPlan)
    sis_workers: int = 2
    # SIS's account quota: jobs waiting or running at once before a submission gets SIS.0312.
    sis_max_concurrent_jobs: int = 100
    dashscope_workers: int = 2
    dashscope_max_files_per_task: int = 100
    # Like the deployed SQS event source: up to this many messages, gathered for up to the window
    # (a lone upload waits the whole window, as on AWS).
    batch_size: int = DEPLOYED_SUBMIT_BATCH_SIZE
    batching_window_s: float = DEPLOYED_SUBMIT_BATCHING_WINDOW_S
    # Batches handled at once, in as many submit instances (the event source's maximumConcurrency).
    submit_concurrency: int = DEPLOYED_SUBMIT_MAX_CONCURRENCY
    # The reconcile schedule (5 minutes on AWS) and when it first looks at a submitted job.
    reconcile_interval_s: float = 30.0
    first_check_after_s: int = 60
    max_check_interval_s: int = 300
    # How long a worker owns a job it submits (below the queue's visibility timeout), how long a
    # submission whose answer was lost waits for evidence, and when a refused one is retried.
    claim_lease_s: int = 20
    evidence_wait_s: int = 60
    search_delay_s: int = 2
    submit_retry_after_s: int = 2
    capacity_retry_after_s: int = 2
    profiles_json: str | None = None
    # Faults on our side: a worker dying right after a provider accepted, job-store outages.
    pipeline_faults: PipelineFaultPlan = Field(default_factory=PipelineFaultPlan)
    log_file: Path | None = None
    # Without a log file, function logs go to stdout, or to stderr where stdout carries data.
    logs_to_stderr: bool = False
    metrics: bool = False
    # None: a fresh random value per run.
    callback_secret: str | None = None
    status_token: str | None = None
    push_token: str | None = None
    # The default profile's webhook (BUCKETSCRIBE_WEBHOOK_URL / _SECRET): every upload's end is
    # POSTed there, signed (a receiver on this machine is allowed unless the user says otherwise).
    webhook_url: str | None = None
    webhook_secret: str | None = None
    # Keep the bucket and the job records here between runs (``state_dir.StateDir``).
    state_dir: Path | None = None
    # "huawei": the functions run as on FunctionGraph (local/huawei_shape.py): OBS SDK, OBS
    # trigger events without a queue, API Gateway trigger events, a timer.
    cloud: Literal["aws", "huawei"] = "aws"


class PortUnavailable(RuntimeError):
    """A port the stack was told to listen on cannot be had (taken, or not allowed)."""

    def __init__(self, port: int, reason: str) -> None:
        super().__init__(f"port {port} {reason}")
        self.port = port
        self.reason = reason


def ensure_port_free(port: int, host: str = "127.0.0.1") -> None:
    """Raise ``PortUnavailable`` now rather than let a server thread fail to bind in the background."""
    if port == 0:
        return
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers bind: a port in TIME_WAIT is free, one with a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise PortUnavailable(port, "is in use by another program") from None
            if error.errno == errno.EACCES:
                raise PortUnavailable(port, "needs privileges this user does not have") from None
            raise PortUnavailable(port, f"cannot be used ({error.strerror})") from None


def options_from_environment(**fields: Any) -> LocalStackOptions:
    """Options with the user's ``BUCKETSCRIBE_*`` settings applied, as the deployed functions read them.

    The stack wires endpoints, emulator credentials and tables itself; what a user tunes (prefixes,
    profiles, the callback secret, the status token, the reconciler's timing) comes from the
    environment when set there. Raises ``ValueError`` naming the setting that does not parse.
    """
    from pydantic import ValidationError

    from bucketscribe.providers.registry import load_profiles
    from bucketscribe.settings import Settings

    try:
        settings = Settings()
    except ValidationError as error:
        raise ValueError(f"a BUCKETSCRIBE_* setting is not valid: {_first_line(error)}") from None
    try:
        raw = settings.raw_profiles()
        profile_set = load_profiles(raw) if raw is not None else None
    except (ValidationError, ValueError, OSError) as error:
        source = (
            "BUCKETSCRIBE_PROFILES"
            if settings.profiles
            else f"BUCKETSCRIBE_PROFILES_FILE ({settings.profiles_file})"
        )
        raise ValueError(f"{source} is not a valid list of profiles: {_first_line(error)}") from None
    given = settings.model_fields_set
    names = fields.pop("names", None) or LocalAwsNames()
    if "input_prefix" in given:
        names = names.model_copy(update={"input_prefix": settings.input_prefix})
    from_env: dict[str, Any] = {"names": names}
    if "output_prefix" in given:
        from_env["output_prefix"] = settings.output_prefix
    if settings.webhook_url:
        from_env["webhook_url"] = settings.webhook_url
    if profile_set is not None:
        from_env["profiles_json"] = json.dumps([p.model_dump(mode="json") for p in profile_set.profiles])
    for secret_field, option in (
        ("callback_secret", "callback_secret"),
        ("status_api_token", "status_token"),
        ("push_token", "push_token"),
        ("webhook_secret", "webhook_secret"),
    ):
        value = getattr(settings, secret_field)
        if value is not None:
            from_env[option] = value.get_secret_value()
    # The stack sets these for its functions; a user's own value wins (and is checked against the
    # local queue's visibility timeout like a deployment's: a lease that is too long is refused).
    for timing in (
        "first_check_after_s",
        "max_check_interval_s",
        "claim_lease_s",
        "evidence_wait_s",
        "search_delay_s",
        "submit_retry_after_s",
        "dashscope_max_files_per_task",
    ):
        if timing in given:
            from_env[timing] = getattr(settings, timing)
    faults = os.environ.get(LOCAL_FAULTS_ENV)
    if faults:
        from_env.update(_faults_from_json(faults))
    return LocalStackOptions(**{**fields, **from_env})


def _faults_from_json(text: str) -> dict[str, Any]:
    """``BUCKETSCRIBE_LOCAL_FAULTS``: the emulators' fault plan, plus ``storage_errors`` for the
    stack's own storage (``[{"op": "head", "key_contains": "sealed", "status": 400}]``)."""
    from pydantic import ValidationError

    try:
        plan = json.loads(text)
        if not isinstance(plan, dict):
            raise ValueError("expected a JSON object")
        storage_errors = plan.pop("storage_errors", [])
        return {
            "faults": FaultPlan.model_validate(plan),
            "pipeline_faults": PipelineFaultPlan(storage_errors=storage_errors),
        }
    except ValidationError as error:
        raise ValueError(f"{LOCAL_FAULTS_ENV} is not a fault plan: {_first_line(error)}") from None
    except ValueError as error:
        raise ValueError(f"{LOCAL_FAULTS_ENV} is not a fault plan: {error}") from None


def _first_line(error: Exception) -> str:
    text = str(error)
    if hasattr(error, "errors"):
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        text = f"{where}: {first['msg']}" if where else str(first["msg"])
    return text.splitlines()[0]


class LocalStack:
    def __init__(self, options: LocalStackOptions | None = None) -> None:
        self.options = options or LocalStackOptions()
        self._moto: Any = None
        self._callback_server: Any = None
        self._dispatcher: Any = None
        self._reconciler: Any = None
        self.huawei: HuaweiShape | None = None
        self.sis: Any = None
        self.dashscope: Any = None
        self.push_token = ""
        self._dashscope_key = "sk-local-" + secrets.token_hex(8)
        self.resources: LocalAwsResources | None = None
        self.endpoint_url = ""
        self.callback_url = ""
        self.status_token = ""
        self._log_stream: Any = None
        self._rerouted: dict[logging.StreamHandler[Any], Any] = {}
        self._environment_before: dict[str, str | None] = {}
        self._jobs: Any = None
        self.pipeline_faults = PipelineFaults()
        self.state: StateDir | None = None
        self.restored: StateCounts | None = None

    # ----- life cycle -------------------------------------------------------------------------

    def start(self) -> LocalStack:
        import boto3

        from bucketscribe_local import huawei_shape
        from bucketscribe_local.dashscope_server import DashScopeEmulator
        from bucketscribe_local.http_thread import BackgroundHttpServer
        from bucketscribe_local.lambda_bridge import Ticker, api_gateway_app
        from bucketscribe_local.moto_process import MotoProcess
        from bucketscribe_local.sis_server import SisEmulator

        opts = self.options
        ensure_port_free(opts.moto_port)
        ensure_port_free(opts.callback_port)
        ensure_port_free(opts.sis_port)
        # A fresh process each time: every stack starts from an empty account.
        self._moto = MotoProcess(
            port=opts.moto_port, request_log=opts.moto_request_log, latencies=opts.moto_latencies
        ).start()
        host, port = self._moto.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        session = boto3.session.Session(
            aws_access_key_id=LOCAL_ACCESS_KEY,
            aws_secret_access_key=LOCAL_SECRET_KEY,
            region_name=LOCAL_REGION,
        )
        self.resources = provision(session, self.endpoint_url, opts.names)
        if opts.state_dir is not None:
            self.state = StateDir(opts.state_dir, bucket=opts.names.bucket, jobs_table=opts.names.jobs_table)
            self.restored = self.state.restore(self.client)

        # The callback endpoint comes first: its URL goes into the settings and the push target.
        routes = [
            ("POST", "/callbacks/sis/{job_id}"),
            ("POST", "/callbacks/dashscope"),
            ("GET", "/jobs/{job_id}"),
            ("GET", "/jobs"),
        ]
        self._callback_server = BackgroundHttpServer(
            huawei_shape.callback_app(routes)
            if opts.cloud == "huawei"
            else api_gateway_app(self._invoke_callback, routes),
            port=opts.callback_port,
        ).start()
        self.callback_url = self._callback_server.url
        engine = self._engine()
        self.sis = SisEmulator(
            engine=engine,
            faults=opts.faults,
            workers=opts.sis_workers,
            max_concurrent_jobs=opts.sis_max_concurrent_jobs,
            port=opts.sis_port,
        )
        self.sis.start()
        self.push_token = opts.push_token or secrets.token_urlsafe(24)
        self.dashscope = DashScopeEmulator(
            api_keys=[self._dashscope_key],
            engine=engine,
            faults=opts.faults,
            workers=opts.dashscope_workers,
            max_files_per_task=opts.dashscope_max_files_per_task,
            # As an EventBridge API destination with API-key auth would send it.
            push_target_url=f"{self.callback_url}/callbacks/dashscope",
            push_headers={"x-bucketscribe-push-token": self.push_token},
        )
        self.dashscope.start()
        self.status_token = opts.status_token or secrets.token_urlsafe(24)
        self._configure_environment()
        if opts.cloud == "huawei":
            self.huawei = huawei_shape.HuaweiShape(self)
            self.huawei.configure_settings()
        self._load_settings()
        self.pipeline_faults = PipelineFaults(opts.pipeline_faults)
        from bucketscribe.wiring import environment_ports

        # The functions run in this process and share these ports, as one warm instance would.
        self.pipeline_faults.install(environment_ports())
        self._route_function_logs()
        if self.huawei is not None:
            # Huawei's upload trigger and timer take the places of the SQS dispatcher and schedule.
            self._dispatcher = self.huawei.start()
            self._reconciler = Ticker(opts.reconcile_interval_s, self.reconcile_now, name="reconcile")
            self._reconciler.start()
            return self

        from bucketscribe.clouds.aws import submit
        from bucketscribe_local.lambda_bridge import SqsDispatcher

        sqs = session.client("sqs", endpoint_url=self.endpoint_url)
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.resources.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self._dispatcher = SqsDispatcher(
            sqs,
            self.resources.queue_url,
            queue_arn,
            submit.handler,
            batch_size=opts.batch_size,
            batching_window_s=opts.batching_window_s,
            concurrency=opts.submit_concurrency,
        )
        self._dispatcher.start()
        self._reconciler = Ticker(opts.reconcile_interval_s, self.reconcile_now, name="reconcile")
        self._reconciler.start()
        return self

    def reconcile_now(self) -> dict[str, Any]:
        """One run of the real reconcile handler, as the schedule triggers it."""
        if self.huawei is not None:
            return self.huawei.reconcile_now()
        from bucketscribe.entrypoints import reconcile
        from bucketscribe_local.lambda_bridge import LocalLambdaContext

        return reconcile.handler(
            {"source": "aws.events", "detail-type": "Scheduled Event"},
            LocalLambdaContext("bucketscribe-reconcile", timeout_s=300),
        )

    def stop(self, *, leaving_process: bool = False) -> StateCounts | None:
        """Stop every part; with a state folder, save the bucket and the jobs first (returns the counts).

        ``leaving_process``: the process exits right after (``up``), closing every socket and
        thread with it: moto's shutdown (half a second of its server's polling) is not waited for,
        nor, when nothing is to be saved, the orderly stop of each server and worker (what keeps
        Ctrl-C within a second on a machine whose cores are busy)."""
        saving = self.state is not None and self.resources is not None
        if saving or not leaving_process:
            # Nothing may write to the bucket or the jobs while they are saved.
            for part in (self._reconciler, self._dispatcher, self._callback_server, self.sis, self.dashscope):
                if part is not None:
                    part.stop()
        saved = None
        if saving:
            assert self.state is not None
            saved = self.state.save(self.client)
        if self._moto is not None:
            self._moto.stop(wait=not leaving_process)
        self._restore_environment()
        # The function loggers outlive the stack: hand them their streams back before closing ours.
        for handler, original in self._rerouted.items():
            handler.setStream(original)
        self._rerouted.clear()
        if self._log_stream is not None:
            self._log_stream.close()
        return saved

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _engine(self) -> Any:
        from bucketscribe_local.speech import FixedSpeechEngine

        if self.options.digest:
            from bucketscribe_local.digest_engine import DigestSpeechEngine

            return DigestSpeechEngine()
        if self.options.instant:
            return FixedSpeechEngine()
        from bucketscribe_local.whisper_engine import WhisperSpeechEngine, shared_engine

        engine = (
            WhisperSpeechEngine(self.options.engine_model) if self.options.engine_model else shared_engine()
        )
        if self.options.engine_language or self.options.engine_translate:
            from bucketscribe_local.speech import EngineDefaults

            return EngineDefaults(
                engine, self.options.engine_language, translate=self.options.engine_translate
            )
        return engine

    def _configure_environment(self) -> None:
        opts = self.options
        names = opts.names
        assert self.resources is not None
        env = {
            "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_KEY,
            "AWS_DEFAULT_REGION": LOCAL_REGION,
            "POWERTOOLS_SERVICE_NAME": "bucketscribe",
            "POWERTOOLS_METRICS_NAMESPACE": "bucketscribe",
            "POWERTOOLS_METRICS_DISABLED": "false" if opts.metrics else "true",
            "BUCKETSCRIBE_CLOUD": "aws",  # the Huawei shape puts its own cloud in its place
            "BUCKETSCRIBE_AWS_ENDPOINT_URL": self.endpoint_url,
            "BUCKETSCRIBE_JOBS_TABLE": names.jobs_table,
            "BUCKETSCRIBE_DEAD_LETTER_QUEUE_URL": self.resources.dead_letter_queue_url,
            "BUCKETSCRIBE_UPLOAD_QUEUE_URL": self.resources.queue_url,
            "BUCKETSCRIBE_CLAIM_LEASE_S": str(opts.claim_lease_s),
            "BUCKETSCRIBE_EVIDENCE_WAIT_S": str(opts.evidence_wait_s),
            "BUCKETSCRIBE_SEARCH_DELAY_S": str(opts.search_delay_s),
            "BUCKETSCRIBE_SUBMIT_RETRY_AFTER_S": str(opts.submit_retry_after_s),
            "BUCKETSCRIBE_CAPACITY_RETRY_AFTER_S": str(opts.capacity_retry_after_s),
            "BUCKETSCRIBE_INPUT_PREFIX": names.input_prefix,
            "BUCKETSCRIBE_OUTPUT_PREFIX": opts.output_prefix,
            "BUCKETSCRIBE_CALLBACK_BASE_URL": self.callback_url,
            "BUCKETSCRIBE_CALLBACK_SECRET": opts.callback_secret or secrets.token_urlsafe(32),
            "BUCKETSCRIBE_STATUS_API_TOKEN": self.status_token,
            # The emulators' engine reads whatever ffmpeg reads: uploads go to it as they are.
            "BUCKETSCRIBE_PROVIDER_DECODES": "any",
            "BUCKETSCRIBE_SIS_ENDPOINT": self.sis.url,
            "BUCKETSCRIBE_SIS_PROJECT_ID": self.sis.project_id,
            "HUAWEICLOUD_SDK_AK": self.sis.ak,
            "HUAWEICLOUD_SDK_SK": self.sis.sk,
            "BUCKETSCRIBE_DASHSCOPE_API_KEY": self._dashscope_key,
            "BUCKETSCRIBE_DASHSCOPE_BASE_URL": self.dashscope.http_api_url,
            "BUCKETSCRIBE_DASHSCOPE_WS_URL": self.dashscope.ws_url,
            "BUCKETSCRIBE_DASHSCOPE_MAX_FILES_PER_TASK": str(opts.dashscope_max_files_per_task),
            "BUCKETSCRIBE_PUSH_TOKEN": self.push_token,
            "BUCKETSCRIBE_FIRST_CHECK_AFTER_S": str(opts.first_check_after_s),
            "BUCKETSCRIBE_MAX_CHECK_INTERVAL_S": str(opts.max_check_interval_s),
        }
        if opts.profiles_json:
            env["BUCKETSCRIBE_PROFILES"] = opts.profiles_json
        if opts.webhook_url:
            env["BUCKETSCRIBE_WEBHOOK_URL"] = opts.webhook_url
            # A receiver on this machine is what trying a webhook locally means (a user's own
            # setting wins).
            allowed = os.environ.get("BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE", "true")
            env["BUCKETSCRIBE_WEBHOOK_ALLOW_PRIVATE"] = allowed
        if opts.webhook_secret:
            env["BUCKETSCRIBE_WEBHOOK_SECRET"] = opts.webhook_secret
        self._environment_before = {key: os.environ.get(key) for key in env}
        os.environ.update(env)

    def _restore_environment(self) -> None:
        """Give the process its settings back (those of an enclosing stack, if one is running)."""
        for key, value in self._environment_before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._environment_before = {}
        _functions_start_cold()

    @staticmethod
    def _load_settings() -> None:
        """The functions' settings, as they will read them: refused here, at start, if inconsistent.
        Settings and ports cached by an earlier stack in this process are dropped."""
        from bucketscribe.clouds.aws.upload_queue import check_upload_queue
        from bucketscribe.wiring import environment_settings

        _functions_start_cold()
        check_upload_queue(environment_settings())  # no queue in the Huawei shape: nothing to check

    def _route_function_logs(self) -> None:
        """Function logs (Powertools JSON) go to a file, so the console shows progress, not noise."""
        if self.options.log_file is not None:
            self.options.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log_stream = self.options.log_file.open("a", encoding="utf-8")
            stream = self._log_stream
        elif self.options.logs_to_stderr:
            stream = sys.stderr
        else:
            return
        from bucketscribe import observability  # noqa: F401 - creates the functions' logger

        for handler in logging.getLogger("bucketscribe").handlers:
            if isinstance(handler, logging.StreamHandler):
                self._rerouted[handler] = handler.setStream(stream)

    def _invoke_callback(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from bucketscribe.clouds.aws import callback

        return callback.handler(event, context)

    # ----- what users and tests do with it ----------------------------------------------------

    @property
    def dashscope_api_key(self) -> str:
        """The key the DashScope emulator takes (a fresh one per run), for any SDK client."""
        return self._dashscope_key

    def set_faults(self, plan: FaultPlan) -> None:
        """Turn the emulators' fault knobs (lost or repeated callbacks, throttling, failures)."""
        self.sis.set_faults(plan)
        self.dashscope.set_faults(plan)

    @contextmanager
    def dispatch_paused(self) -> Iterator[None]:
        """Hold the submit function back while uploads queue up (a backlog), then let it run."""
        self._dispatcher.pause()
        try:
            yield
        finally:
            self._dispatcher.resume()

    @contextmanager
    def reconcile_paused(self) -> Iterator[None]:
        """Hold the reconcile schedule back (a run under way ends first), then let it run."""
        self._reconciler.pause()
        try:
            yield
        finally:
            self._reconciler.resume()

    @property
    def reconcile_runs_failed(self) -> int:
        """Scheduled reconcile runs that raised instead of ending with a report."""
        return int(self._reconciler.failures)

    def queue_depth(self) -> int:
        assert self.resources is not None
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.resources.queue_url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    @property
    def dispatcher(self) -> Any:
        """The stand-in for Lambda's SQS poller (its ``batches`` and ``crashes`` counters)."""
        return self._dispatcher

    def set_batching(self, batch_size: int, window_s: float) -> None:
        """Change the SQS event-source batching, as editing the deployed event source would."""
        self._dispatcher.set_batching(batch_size, window_s)

    @property
    def bucket(self) -> str:
        return self.options.names.bucket

    @property
    def layout(self) -> OutputLayout:
        return OutputLayout(
            input_prefix=self.options.names.input_prefix, output_prefix=self.options.output_prefix
        )

    def client(self, service: str) -> Any:
        import boto3

        client: Any = boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint_url,
            region_name=LOCAL_REGION,
            aws_access_key_id=LOCAL_ACCESS_KEY,
            aws_secret_access_key=LOCAL_SECRET_KEY,
        )
        return client

    def upload(self, body: bytes, key: str, *, content_type: str = "application/octet-stream") -> ObjectRef:
        response = self.client("s3").put_object(
            Bucket=self.bucket, Key=key, Body=body, ContentType=content_type
        )
        return ObjectRef(
            bucket=self.bucket,
            key=key,
            size=len(body),
            etag=response["ETag"].strip('"'),
            version_id=response.get("VersionId"),
        )

    def _job_store(self) -> Any:
        if self._jobs is None:
            from bucketscribe.clouds.aws.job_store import DynamoJobStore

            self._jobs = DynamoJobStore(self.options.names.jobs_table, self.client("dynamodb"))
        return self._jobs

    def job(self, job_id: str) -> Job | None:
        job: Job | None = self._job_store().get(job_id)
        return job

    def jobs_for_key(self, key: str) -> list[Job]:
        """The jobs of uploads to ``key`` in the stack's bucket, newest first."""
        jobs: list[Job] = self._job_store().for_source(self.bucket, key)
        return jobs

    def ref_for(self, key: str) -> ObjectRef:
        """The upload now stored at ``key`` (its ETag and version, as a job names them)."""
        head = self.client("s3").head_object(Bucket=self.bucket, Key=key)
        return ObjectRef(
            bucket=self.bucket,
            key=key,
            size=head["ContentLength"],
            etag=head["ETag"].strip('"'),
            version_id=head.get("VersionId"),
        )

    def wait_for_jobs(
        self, refs: list[ObjectRef], *, timeout_s: float, poll_s: float = 0.25
    ) -> dict[str, Job]:
        """Wait until every upload's job is final (or the timeout passes); returns what is known."""
        latest: dict[str, Job] = {}
        for latest in self.watch(refs, timeout_s=timeout_s, poll_s=poll_s):  # noqa: B007 - keep the last
            continue
        return latest

    def watch(
        self, refs: list[ObjectRef], *, timeout_s: float, poll_s: float = 0.25
    ) -> Iterator[dict[str, Job]]:
        """Yield the known jobs (by upload key) whenever they change, until all are final."""
        deadline = time.monotonic() + timeout_s
        last: dict[str, str] = {}
        while True:
            jobs = {ref.key: job for ref in refs if (job := self.job(ref.job_id())) is not None}
            fingerprint = {key: job.state.value for key, job in jobs.items()}
            if fingerprint != last:
                last = fingerprint
                yield jobs
            if len(jobs) == len(refs) and all(j.state.is_final for j in jobs.values()):
                return
            if time.monotonic() > deadline:
                yield jobs
                return
            time.sleep(poll_s)

    def wait_queue_idle(self, *, timeout_s: float, poll_s: float = 0.2) -> bool:
        """True once the upload queue has no visible or in-flight messages."""
        assert self.resources is not None
        sqs = self.client("sqs")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            attributes = sqs.get_queue_attributes(
                QueueUrl=self.resources.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if all(int(value) == 0 for value in attributes.values()):
                return True
            time.sleep(poll_s)
        return False

    def read_output(self, key: str) -> bytes:
        return self.client("s3").get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def list_keys(self, prefix: str = "") -> list[str]:
        paginator = self.client("s3").get_paginator("list_objects_v2")
        return [
            obj["Key"]
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix)
            for obj in page.get("Contents", [])
        ]


def _functions_start_cold() -> None:
    """The functions read their settings once per cold start; a stack's start or stop is a new
    deployment, so they must read them again (not the endpoints of a stack that is gone)."""
    from bucketscribe.clouds.aws import submit
    from bucketscribe.wiring import environment_ports, environment_secrets, environment_settings

    environment_settings.cache_clear()
    environment_secrets.cache_clear()
    environment_ports.cache_clear()
    submit.upload_queue_checked.cache_clear()


@contextmanager
def running_stack(options: LocalStackOptions | None = None) -> Iterator[LocalStack]:
    stack = LocalStack(options)
    try:
        yield stack.start()
    finally:
        stack.stop()

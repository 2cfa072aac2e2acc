"""A provider and a cloud are each one folder and one registry line.

``echo_provider/`` (a ``ProviderPlugin`` and a ``TaskProvider`` that calls back) and
``folder_cloud/`` (a ``CloudPlugin`` whose buckets are folders and whose job store is a JSON file)
are added to the build each with one line, the ``monkeypatch.setitem`` on its registry standing in
for the line a new folder adds to ``providers/registry.py`` or ``clouds/registry.py``. A deployment
then names them in its environment only, and an upload goes through the real use cases as the
entry points compose them (``wiring.environment_ports``): submitted, then finished by the
provider's callback through the HTTP entry point, or by the reconcile entry point when no callback
comes. The folders use nothing of the core but its ports, domain, plugin protocols and settings,
and nothing outside them names them.
"""

from __future__ import annotations

import ast
import asyncio
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer
from bucketscribe_local.lambda_bridge import LocalLambdaContext

from bucketscribe import wiring
from bucketscribe.clouds import registry as clouds_registry
from bucketscribe.domain.job import JobState
from bucketscribe.domain.upload import ObjectRef
from bucketscribe.entrypoints import reconcile as reconcile_entrypoint
from bucketscribe.entrypoints.http.app import app as http_api
from bucketscribe.entrypoints.http.routing import Request
from bucketscribe.pipeline.submit import UploadOutcome, submit_uploads
from bucketscribe.providers import registry as providers_registry
from tests import plugins
from tests.audio import tone_wav
from tests.plugins import echo_provider, folder_cloud
from tests.plugins.echo_provider.service import SERVICE as ECHO_SERVICE

pytestmark = pytest.mark.integration

ECHO = echo_provider.PLUGINS[0]
FOLDER = folder_cloud.CLOUD
REPOSITORY = Path(__file__).resolve().parents[2]
BUCKET = "recordings"
KEY = "incoming/standups/monday 9am.wav"
TRANSCRIPT = "transcripts/standups/monday 9am.wav.json"
# What each folder may import of the core: the ports, the domain, its plugin protocol, the settings.
ALLOWED_CORE = {
    "echo_provider": ("bucketscribe.ports", "bucketscribe.domain", "bucketscribe.providers.plugin"),
    "folder_cloud": ("bucketscribe.ports", "bucketscribe.domain", "bucketscribe.clouds.plugin"),
}
SHARED_CORE = ("bucketscribe.settings",)
# What the ports' own models are made of.
THIRD_PARTY = ("pydantic",)


def clear_wiring_caches() -> None:
    """Forget the composed ports, as a new function instance starts without them."""
    for cached in (wiring.environment_settings, wiring.environment_secrets, wiring.environment_ports):
        cached.cache_clear()


@dataclass
class Deployment:
    root: Path

    def upload(self, key: str, body: bytes) -> ObjectRef:
        """An upload as a user makes one: a file put into the bucket's folder."""
        path = self.root / "buckets" / BUCKET / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
        return ObjectRef(bucket=BUCKET, key=key)

    def output(self, key: str) -> Path:
        return self.root / "buckets" / BUCKET / key


def deploy(root: Path, callback_base_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment's environment: the folder cloud, one profile for Echo, a callback secret."""
    environment = {
        "BUCKETSCRIBE_CLOUD": FOLDER.name,
        "BUCKETSCRIBE_FOLDER_ROOT": str(root),
        "BUCKETSCRIBE_PROFILES": json.dumps(
            [{"name": "standups", "provider": ECHO.name, "echo": {"words": "the echo heard"}}]
        ),
        "BUCKETSCRIBE_CALLBACK_SECRET": "plugin-test-callback-secret-0123456789",
        "BUCKETSCRIBE_CALLBACK_BASE_URL": callback_base_url,
        # A job is due for the reconciler at once (it is finished by callback when one comes first).
        "BUCKETSCRIBE_FIRST_CHECK_AFTER_S": "0",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)


def callback_function() -> BackgroundHttpServer:
    """The deployment's callback function: HTTP requests read into the HTTP API's requests, as each
    cloud's gateway entry point does with its own event (the folder cloud has no gateway of its own)."""

    async def serve(request: web.Request) -> web.Response:
        body = await request.text()
        api_request = Request(
            method=request.method,
            path=request.path,
            headers={name.lower(): value for name, value in request.headers.items()},
            query=dict(request.query),
            read_body=lambda: body,
            context=LocalLambdaContext("bucketscribe-callback", timeout_s=28),
        )
        reply = await asyncio.get_running_loop().run_in_executor(None, http_api.resolve, api_request)
        return web.Response(status=reply.status, text=reply.body, content_type=reply.content_type)

    app = web.Application()
    app.router.add_route("*", "/{path:.*}", serve)
    return BackgroundHttpServer(app)


@pytest.fixture
def deployment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Deployment]:
    monkeypatch.setitem(providers_registry.PLUGINS, ECHO.name, ECHO)  # the provider's registry line
    monkeypatch.setitem(clouds_registry.CLOUDS, FOLDER.name, FOLDER)  # the cloud's registry line
    with callback_function() as callbacks:
        deploy(tmp_path, callbacks.url, monkeypatch)
        ECHO_SERVICE.forget_everything()
        clear_wiring_caches()
        yield Deployment(tmp_path)
        clear_wiring_caches()


def test_an_upload_is_transcribed_and_finished_by_its_callback(deployment: Deployment) -> None:
    (result,) = submit_uploads([deployment.upload(KEY, tone_wav(1.5))], wiring.environment_ports())
    assert result.outcome is UploadOutcome.SUBMITTED, result.reason
    clear_wiring_caches()  # the callback function is another instance: it composes its own ports

    assert ECHO_SERVICE.call_back() == [200]

    transcript = json.loads(deployment.output(TRANSCRIPT).read_text(encoding="utf-8"))
    assert transcript["provider"] == "echo" and transcript["model"] == "echo-1"
    assert [segment["text"] for segment in transcript["segments"]] == ["the echo heard 1.5 seconds"]
    assert deployment.output("transcripts/standups/monday 9am.wav.txt").is_file()
    # The provider's own result is kept under its name, and its plugin reads it back offline
    # (``bucketscribe normalize``).
    raw = json.loads(deployment.output("transcripts/standups/monday 9am.wav.echo.json").read_text())
    assert ECHO.transcript_from_result(raw, model=None, language=None).text == "the echo heard 1.5 seconds"
    job = wiring.environment_ports().jobs.get(result.job_id or "")
    assert job is not None and job.state is JobState.DONE and job.provider == ECHO.name


def test_an_upload_whose_callback_never_comes_is_finished_by_the_reconciler(deployment: Deployment) -> None:
    (result,) = submit_uploads([deployment.upload(KEY, tone_wav(2.0))], wiring.environment_ports())
    assert result.outcome is UploadOutcome.SUBMITTED, result.reason
    clear_wiring_caches()  # the scheduled reconcile function is another instance

    report = reconcile_entrypoint.handler({}, LocalLambdaContext("bucketscribe-reconcile", timeout_s=300))

    assert (report["due"], report["finished"], report["units_failed"]) == (1, 1, 0)
    transcript = json.loads(deployment.output(TRANSCRIPT).read_text(encoding="utf-8"))
    assert transcript["segments"][0]["text"] == "the echo heard 2 seconds"
    # The callback, late, finds the job finished: answered, and nothing is written again (a put
    # replaces the file with a new one, so a rewrite would show as another inode).
    written = deployment.output(TRANSCRIPT).stat().st_ino
    assert ECHO_SERVICE.call_back() == [200]
    assert deployment.output(TRANSCRIPT).stat().st_ino == written


def test_without_its_registry_line_neither_is_known(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry line is what makes each known: the same environment without it is refused, by name."""
    deploy(tmp_path, "http://127.0.0.1:9", monkeypatch)
    clear_wiring_caches()
    try:
        with pytest.raises(LookupError, match=f"unknown cloud '{FOLDER.name}'"):
            wiring.environment_settings()
        monkeypatch.setitem(clouds_registry.CLOUDS, FOLDER.name, FOLDER)
        with pytest.raises(ValueError, match=f"unknown provider '{ECHO.name}'"):
            wiring.environment_settings()
    finally:
        clear_wiring_caches()


# ----- the folders stand on their own --------------------------------------------------------------


def plugin_folders() -> dict[str, Path]:
    return {name: Path(plugins.__file__).parent / name for name in ALLOWED_CORE}


def imported_modules(source: Path) -> Iterator[tuple[int, str]]:
    """(line, module) of every import in a file; a relative import is the folder's own."""
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            yield from ((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module


def is_within(module: str, packages: tuple[str, ...]) -> bool:
    return any(module == package or module.startswith(f"{package}.") for package in packages)


@pytest.mark.parametrize("folder", sorted(ALLOWED_CORE))
def test_a_plugin_folder_imports_of_the_core_only_ports_domain_its_protocol_and_settings(
    folder: str,
) -> None:
    own = (f"{plugins.__name__}.{folder}",)
    allowed = (*own, *ALLOWED_CORE[folder], *SHARED_CORE, *THIRD_PARTY)
    sources = sorted(plugin_folders()[folder].rglob("*.py"))
    assert sources, f"no sources found in {folder}"
    found = {
        f"{source.name}:{line} imports {module}"
        for source in sources
        for line, module in imported_modules(source)
        if module.split(".")[0] not in sys.stdlib_module_names and not is_within(module, allowed)
    }
    assert found == set()


def project_texts() -> Iterator[tuple[Path, str]]:
    """Every text file that makes the project work: its sources, tests, configuration and
    infrastructure. Not its prose (Markdown: a guide may point at a plugin folder as an example
    without wiring anything), nor what is installed or built (dependencies, virtual environments,
    caches, hidden folders)."""
    for folder, subfolders, files in os.walk(REPOSITORY):
        subfolders[:] = sorted(
            name
            for name in subfolders
            if not name.startswith(".")
            and name not in ("node_modules", "__pycache__")
            and not name.endswith(".egg-info")
        )
        for name in sorted(files):
            path = Path(folder) / name
            if path.suffix == ".md":
                continue
            try:
                yield path, path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # not text: audio samples, images


@pytest.mark.parametrize(
    ("folder", "registered_as"), [("echo_provider", ECHO.name), ("folder_cloud", FOLDER.name)]
)
def test_no_file_outside_a_plugin_folder_names_it(folder: str, registered_as: str) -> None:
    """Neither the folder's package nor its registry name (as a quoted string) appears anywhere
    else, but in this test, which holds the registry line."""
    inside = plugin_folders()[folder]
    naming = re.compile(rf"\b{folder}\b|[\"']{re.escape(registered_as)}[\"']")
    texts = list(project_texts())
    assert any(path == Path(__file__).resolve() for path, _ in texts), "the scan missed this very file"
    naming_it = [
        f"{path.relative_to(REPOSITORY)}:{text.count(chr(10), 0, match.start()) + 1}"
        for path, text in texts
        if not path.is_relative_to(inside) and path != Path(__file__).resolve()
        for match in naming.finditer(text)
    ]
    assert naming_it == []

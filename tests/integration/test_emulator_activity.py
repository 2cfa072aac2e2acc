"""`transcribe` asks the emulators which files they hold (GET /_emulator/jobs) over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiohttp import web
from bucketscribe_local.http_thread import BackgroundHttpServer

from bucketscribe.cli.progress import EmulatorActivity

pytestmark = pytest.mark.integration

ROW = {
    "task_id": "t-1",
    "file_url": "http://127.0.0.1:1/recordings/incoming/a.wav?sig=x",
    "state": "running",
    "created_at": "2026-11-29T10:00:00Z",
    "finished_at": None,
    "audio_ms_total": 120_000,
    "audio_ms_done": 30_000,
    "lost_response": False,
}


class Emulator:
    """An HTTP server that answers the route with ``body`` (or 404) and counts the questions."""

    def __init__(self, body: object | None) -> None:
        self.asked = 0
        app = web.Application()
        app.router.add_get("/_emulator/jobs", self._jobs)
        self.server = BackgroundHttpServer(app)
        self._body = body

    async def _jobs(self, request: web.Request) -> web.Response:
        self.asked += 1
        if self._body is None:
            raise web.HTTPNotFound()
        return web.json_response(self._body)


@pytest.fixture
def emulators() -> Iterator[tuple[Emulator, Emulator, Emulator]]:
    listing = Emulator({"jobs": [ROW, {**ROW, "task_id": "t-2", "state": "queued", "audio_ms_done": None}]})
    without_route = Emulator(None)
    other_shape = Emulator({"tasks": []})
    for emulator in (listing, without_route, other_shape):
        emulator.server.start()
    yield listing, without_route, other_shape
    for emulator in (listing, without_route, other_shape):
        emulator.server.stop()


def test_rows_come_from_emulators_that_have_the_route_and_the_others_are_left_alone(
    emulators: tuple[Emulator, Emulator, Emulator],
) -> None:
    listing, without_route, other_shape = emulators
    activity = EmulatorActivity([e.server.url for e in emulators])
    first = activity.provider_files()
    assert [(f.task_id, f.state, f.audio_ms_done) for f in first] == [
        ("t-1", "running", 30_000),
        ("t-2", "queued", None),
    ]
    assert activity.provider_files() == first
    # Asked every poll where the route exists; asked once where it does not or answers another shape.
    assert (listing.asked, without_route.asked, other_shape.asked) == (2, 1, 1)


def test_an_emulator_that_is_gone_gives_no_rows_and_no_error() -> None:
    gone = Emulator({"jobs": [ROW]})
    gone.server.start()
    url = gone.server.url
    gone.server.stop()
    assert EmulatorActivity([url], timeout_s=1).provider_files() == []

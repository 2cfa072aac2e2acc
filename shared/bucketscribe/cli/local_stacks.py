"""How the operator's commands find a running ``bucketscribe up`` with nothing exported.

``up`` writes one small file per running stack — where it listens, the local credentials, the job
table, the status API and the emulators — and removes it when it stops; ``status``, ``jobs``,
``redrive`` and ``usage`` read it when nothing else names a job store. The files lie in
``$XDG_RUNTIME_DIR/bucketscribe/`` (the per-user, per-session folder that systemd empties at logout),
or ``~/.cache/bucketscribe/running/`` where that is not set; only their user may read them (they
hold the stack's status token). A file whose process is gone (``up`` was killed) is ignored and
removed.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

RUNTIME_DIR_VARIABLE = "XDG_RUNTIME_DIR"


class LocalStackFile(BaseModel):
    """What an operator's command needs of a running local stack."""

    pid: int
    cloud: str
    endpoint_url: str
    """moto's S3/SQS/DynamoDB endpoint (``http://127.0.0.1:4566``)."""
    region: str
    access_key_id: str
    secret_access_key: str
    jobs_table: str
    bucket: str
    status_api_url: str
    status_token: str
    emulator_urls: list[str]
    """The SIS and DashScope emulators: they say how far into each file they are."""

    @property
    def port(self) -> int:
        return urlsplit(self.endpoint_url).port or 0


def stacks_dir() -> Path:
    runtime = os.environ.get(RUNTIME_DIR_VARIABLE)
    if runtime:
        return Path(runtime) / "bucketscribe"
    return Path.home() / ".cache" / "bucketscribe" / "running"


def announce(stack: LocalStackFile) -> Path:
    """Write ``stack``'s file (readable by this user only); returns it, for ``withdraw``."""
    folder = stacks_dir()
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = folder / f"up-{stack.port}.json"
    partial = folder / f".up-{stack.port}.{os.getpid()}.part"
    # Created with its final permissions, so the token is never readable by others, even briefly.
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(stack.model_dump_json(indent=1))
    partial.replace(path)
    return path


def withdraw(path: Path) -> None:
    """Remove a stack's file, if it is still this process's (another ``up`` may have the port now)."""
    with contextlib.suppress(OSError, ValidationError):
        if LocalStackFile.model_validate_json(path.read_text(encoding="utf-8")).pid == os.getpid():
            path.unlink()


def running_stacks() -> list[LocalStackFile]:
    """The local stacks running now, by S3 port; files of stacks that are gone are removed."""
    folder = stacks_dir()
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("up-*.json")):
        try:
            stack = LocalStackFile.model_validate_json(path.read_text(encoding="utf-8"))
        except (OSError, ValidationError):
            continue  # being written, or not ours to read: never guessed at
        if _alive(stack.pid):
            found.append(stack)
        else:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found, key=lambda stack: stack.port)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process has that id: it exists
    return True

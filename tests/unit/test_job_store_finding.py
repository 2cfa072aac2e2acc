"""Which job store the operator's commands read: a deploy named on the command line, the
functions' own settings where set, else the `bucketscribe up` running here (by its stack file)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bucketscribe.cli.job_stores import JOB_STORE_SETTINGS, Choice, NoJobStore, find_job_store
from bucketscribe.cli.local_stacks import LocalStackFile, announce, running_stacks, stacks_dir, withdraw
from bucketscribe.wiring import environment_settings

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _nothing_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """A user's shell: no BUCKETSCRIBE_* job store setting, its own runtime folder."""
    for name in JOB_STORE_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    environment_settings.cache_clear()
    yield
    environment_settings.cache_clear()


def _stack(port: int, *, cloud: str = "aws", pid: int | None = None) -> LocalStackFile:
    return LocalStackFile(
        pid=os.getpid() if pid is None else pid,
        cloud=cloud,
        endpoint_url=f"http://127.0.0.1:{port}",
        region="us-east-1",
        access_key_id="local-access-key",
        secret_access_key="local-secret-key",
        jobs_table="bucketscribe-jobs",
        bucket="recordings",
        status_api_url="http://127.0.0.1:9",
        status_token="token",
        emulator_urls=["http://127.0.0.1:8", "http://127.0.0.1:7"],
    )


def _gone_pid() -> int:
    """The id of a process that has ended (and been reaped)."""
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(ended.stdout)


def test_up_announces_its_stack_for_this_user_only_and_withdraws_it(tmp_path: Path) -> None:
    path = announce(_stack(4566))
    assert path.parent == stacks_dir() == tmp_path / "bucketscribe"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds the status token
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [s.port for s in running_stacks()] == [4566]
    withdraw(path)
    assert running_stacks() == [] and not path.exists()


def test_a_stack_whose_process_is_gone_is_not_found_and_its_file_is_removed() -> None:
    path = announce(_stack(4566, pid=_gone_pid()))
    assert running_stacks() == []
    assert not path.exists()


def test_the_one_running_stack_is_found_with_its_clouds_scheme() -> None:
    announce(_stack(4566, cloud="huawei"))
    found = find_job_store(Choice())
    assert found.scheme == "obs" and found.where == "the local stack on 127.0.0.1:4566"


def test_two_running_stacks_need_local_to_choose() -> None:
    announce(_stack(4566))
    announce(_stack(4577))
    with pytest.raises(NoJobStore, match=r"2 local stacks are running \(S3 ports 4566, 4577\).*--local PORT"):
        find_job_store(Choice())
    assert find_job_store(Choice(local_port=4577)).where == "the local stack on 127.0.0.1:4577"
    with pytest.raises(NoJobStore, match=r"--local 4588: no `bucketscribe up` listens on that port"):
        find_job_store(Choice(local_port=4588))


def test_the_functions_settings_win_over_a_running_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    announce(_stack(4566))
    monkeypatch.setenv("BUCKETSCRIBE_JOBS_TABLE", "prod-jobs")
    found = find_job_store(Choice())
    assert found.where == "the job store 'prod-jobs'" and found.scheme == "s3"


def test_nothing_running_and_nothing_set_says_what_would_name_a_store() -> None:
    with pytest.raises(NoJobStore) as refused:
        find_job_store(Choice())
    message = str(refused.value)
    assert "\n" not in message
    assert "no `bucketscribe up` is running" in message and "--stage" in message
    assert "BUCKETSCRIBE_JOBS_TABLE" in message

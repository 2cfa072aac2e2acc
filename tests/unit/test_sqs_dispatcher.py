"""The local stack's SQS event source runs batches side by side in up to ``concurrency`` submit
instances (the deployed maximumConcurrency), takes no messages while every instance is busy, and
``pause`` returns only once the batches in flight are handed over."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from bucketscribe_local.lambda_bridge import SqsDispatcher

from tests.waiting import wait_until

pytestmark = pytest.mark.unit

DEADLINE_S = 30.0


class ScriptedQueue:
    """The two SQS calls the dispatcher makes, over a list of message bodies."""

    def __init__(self, bodies: list[str]) -> None:
        self._lock = threading.Lock()
        self.waiting = [
            {"MessageId": f"m{index}", "ReceiptHandle": f"r{index}", "Body": body, "Attributes": {}}
            for index, body in enumerate(bodies)
        ]
        self.deleted: list[str] = []

    def receive_message(self, *, MaxNumberOfMessages: int, **_: Any) -> dict[str, Any]:
        with self._lock:
            taken, self.waiting = self.waiting[:MaxNumberOfMessages], self.waiting[MaxNumberOfMessages:]
        return {"Messages": taken}

    def delete_message_batch(self, *, Entries: list[dict[str, str]], **_: Any) -> None:
        with self._lock:
            self.deleted.extend(entry["ReceiptHandle"] for entry in Entries)


def test_batches_run_side_by_side_up_to_the_concurrency_and_pause_waits_for_them() -> None:
    queue = ScriptedQueue([f"upload-{n}" for n in range(6)])
    together = threading.Barrier(2, timeout=DEADLINE_S)  # two batches must be in at once
    release = threading.Event()
    running: list[int] = []
    most = [0]
    lock = threading.Lock()

    calls = [0]

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        with lock:
            running.append(1)
            most[0] = max(most[0], len(running))
            calls[0] += 1
            first_two = calls[0] <= 2
        try:
            if first_two:
                together.wait()
                release.wait(DEADLINE_S)
        finally:
            with lock:
                running.pop()
        return {"batchItemFailures": []}

    dispatcher = SqsDispatcher(queue, "url", "arn", handler, batch_size=2, concurrency=2)
    dispatcher.start()
    try:
        wait_until(lambda: most[0] == 2, timeout_s=DEADLINE_S, what="two batches in flight", every_s=0.01)
        # Every instance is busy: the third batch stays in the queue.
        assert len(queue.waiting) == 2
        release.set()
        wait_until(
            lambda: len(queue.deleted) == 6, timeout_s=DEADLINE_S, what="every message handled", every_s=0.01
        )
        dispatcher.pause()
        assert running == [] and most[0] == 2 and dispatcher.batches == 3
    finally:
        release.set()
        dispatcher.stop()

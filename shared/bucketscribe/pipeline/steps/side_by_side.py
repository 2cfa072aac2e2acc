"""Step: one step applied to many independent items at once, the results in their order.

An invocation's uploads, and a task's jobs, are independent of each other, and the work on each is
mostly waiting: on the job store, the bucket, the provider. Done one after another, a 100-upload
batch costs the sum of some 400 round trips (seconds in the cloud, tens of seconds where each SIS
submission takes 0.1-0.3 s); done ``width`` at a time it costs about their longest chain.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, cast

T = TypeVar("T")
U = TypeVar("U")


def side_by_side(step: Callable[[T], U], items: Sequence[T], width: int) -> list[U]:
    """``[step(item) for item in items]``, up to ``width`` at a time. An exception (even a
    ``BaseException``, a worker dying) is raised once the items already started are done."""
    if width <= 1 or len(items) <= 1:
        return [step(item) for item in items]
    # Named after the thread that asked: logs and call counts still say whose work it is.
    prefix = threading.current_thread().name
    with ThreadPoolExecutor(max_workers=min(width, len(items)), thread_name_prefix=prefix) as pool:
        return list(pool.map(step, items))


def both(first: Callable[[], T], second: Callable[[], U]) -> tuple[T, U]:
    """``(first(), second())``, the two at once (an exception once both are done)."""
    results = side_by_side(lambda step: step(), [first, second], 2)
    return cast(T, results[0]), cast(U, results[1])

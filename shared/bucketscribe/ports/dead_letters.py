"""The dead-letter port: upload notifications that failed every delivery (a queue's dead-letter
queue, a function platform's failure records: each cloud keeps its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel

if TYPE_CHECKING:  # a callback function's cold start never reads a notification
    from bucketscribe.domain.notification import Notification


class DeadLetter(BaseModel):
    message_id: str
    body: str
    receipt: str
    # How many times the queue has handed it out; None where the
    # store does not count.
    receive_count: int | None = None


class DeadLetters(Protocol):
    """Upload notifications that failed every delivery (the queue's dead-letter queue)."""

    def receive(self, max_messages: int) -> list[DeadLetter]: ...

    def read(self, letter: DeadLetter) -> Notification:
        """The uploads a letter names, read in the cloud's own event shape; ``EventShapeError``
        when it is not a notification at all."""
        ...

    def delete(self, letter: DeadLetter) -> None: ...

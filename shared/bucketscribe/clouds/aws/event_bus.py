"""EventBridge as the event-bus port: one ``PutEvents`` entry per job event (boto3, imported
lazily). Rules on the bus match ``source: bucketscribe`` and the detail-type
``Transcript State Change``; the detail is the event document (``ports.event_bus``)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from bucketscribe.domain.job_events import JobEvent
from bucketscribe.ports.event_bus import DETAIL_TYPE, SOURCE, EventNotPublished, event_document

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsResponseTypeDef


class EventBridgeBus:
    def __init__(
        self, bus_name: str, client: EventBridgeClient | None = None, *, endpoint_url: str | None = None
    ) -> None:
        # Made on the first publish: a function instance that ends no job never pays for it.
        self._client = client
        self._endpoint_url = endpoint_url
        self._bus_name = bus_name

    @property
    def _events(self) -> EventBridgeClient:
        if self._client is None:
            import boto3
            from botocore.config import Config

            self._client = boto3.client(
                "events",
                endpoint_url=self._endpoint_url,
                config=Config(
                    retries={"mode": "standard", "max_attempts": 3}, connect_timeout=5, read_timeout=10
                ),
            )
        return self._client

    def publish(self, event: JobEvent) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            answer = self._put(event)
        except (BotoCoreError, ClientError) as error:
            raise EventNotPublished(f"EventBridge did not take the event: {error}") from None
        # PutEvents answers 200 with per-entry failures (throttled, a bus that is gone, …).
        if answer.get("FailedEntryCount", 0):
            entry = answer["Entries"][0]
            raise EventNotPublished(
                f"EventBridge refused the event: {entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
            )

    def _put(self, event: JobEvent) -> PutEventsResponseTypeDef:
        return self._events.put_events(
            Entries=[
                {
                    "Source": SOURCE,
                    "DetailType": DETAIL_TYPE,
                    "Detail": json.dumps(event_document(event), ensure_ascii=False),
                    "EventBusName": self._bus_name,
                    "Time": event.timestamp,
                }
            ]
        )

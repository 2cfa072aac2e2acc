"""Huawei Cloud SMN as the event-bus port: each job event published to one topic
(``huaweicloudsdksmn``, imported on the first publish), signed with the function's agency key.

Subscribers of the topic (HTTPS endpoints, FunctionGraph, e-mail, …) get the event document
(``ports.event_bus``) as the message; its subject names the event's type.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bucketscribe.clouds.huawei.credentials import (
    AGENCY_CREDENTIALS,
    ClientPerKey,
    HuaweiCredentials,
    sdk_client,
)
from bucketscribe.domain.job_events import JobEvent
from bucketscribe.ports.event_bus import SOURCE, EventNotPublished, event_document


class SmnTopic:
    """``PublishMessage`` to one topic (``POST /v2/{project_id}/notifications/topics/{urn}/publish``).

    The SDK client is rebuilt whenever the credentials change, because an agency's temporary key
    is renewed while a function instance lives on.
    """

    def __init__(
        self,
        topic_urn: str,
        *,
        project_id: str,
        region: str = "cn-north-4",
        endpoint: str | None = None,
        credentials: Callable[[], HuaweiCredentials] = AGENCY_CREDENTIALS.current,
        timeout_s: tuple[float, float] = (5.0, 10.0),
    ) -> None:
        self._topic_urn = topic_urn
        self._project_id = project_id
        self._region = region
        self._endpoint = endpoint
        self._credentials = credentials
        self._timeout_s = timeout_s
        self._clients = ClientPerKey(self._new_client)

    def publish(self, event: JobEvent) -> None:
        from huaweicloudsdkcore.exceptions.exceptions import SdkException
        from huaweicloudsdksmn.v2 import PublishMessageRequest, PublishMessageRequestBody

        request = PublishMessageRequest(
            topic_urn=self._topic_urn,
            body=PublishMessageRequestBody(
                subject=f"{SOURCE} {event.type.value}",
                message=json.dumps(event_document(event), ensure_ascii=False),
            ),
        )
        try:
            self._sdk_client().publish_message(request)
        except SdkException as error:
            code = getattr(error, "error_code", None) or type(error).__name__
            raise EventNotPublished(
                f"SMN refused the event: {code}: {getattr(error, 'error_msg', error)}"
            ) from None

    def _sdk_client(self) -> Any:
        return self._clients.client(self._credentials())

    def _new_client(self, credentials: HuaweiCredentials) -> Any:
        from huaweicloudsdksmn.v2 import SmnClient
        from huaweicloudsdksmn.v2.region.smn_region import SmnRegion

        return sdk_client(
            SmnClient,
            SmnRegion,
            credentials,
            self._project_id,
            endpoint=self._endpoint,
            region=self._region,
            timeout_s=self._timeout_s,
        )

"""A Huawei SDK client (CSMS, SMN) is made once per agency key, however many uploads ask at once,
and made again when the key is renewed."""

from __future__ import annotations

import threading

import pytest
from pydantic import SecretStr

from bucketscribe.clouds.huawei.credentials import ClientPerKey, HuaweiCredentials
from bucketscribe.pipeline.steps.side_by_side import side_by_side

pytestmark = pytest.mark.unit


def test_one_client_per_key_however_many_ask_at_once_and_a_new_one_for_a_renewed_key() -> None:
    made: list[HuaweiCredentials] = []

    def make(credentials: HuaweiCredentials) -> object:
        made.append(credentials)
        threading.Event().wait(0.05)  # a slow build: others ask meanwhile
        return object()

    clients = ClientPerKey(make)
    first = HuaweiCredentials(ak="AK1", sk=SecretStr("sk-one"))
    got = side_by_side(lambda _: clients.client(first), list(range(16)), 16)
    assert len(made) == 1 and all(client is got[0] for client in got)
    renewed = HuaweiCredentials(ak="AK1", sk=SecretStr("sk-two"))
    assert clients.client(renewed) is not got[0] and made == [first, renewed]
    assert clients.client(renewed) is clients.client(renewed) and len(made) == 2

"""A client that has lost every broker is told from a cluster out of everyone's reach: it is
cut off when it cannot get metadata while a new client can, from a broker that lists brokers
(a broker that has just started may list none: librdkafka issue 5301)."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException

from streamtable.runtime import _clients

pytestmark = pytest.mark.unit


class Metadata:
    def __init__(self, brokers: int) -> None:
        self.brokers = {i: object() for i in range(brokers)}


class Client:
    def __init__(self, brokers: int | None) -> None:
        self.brokers = brokers  # None: every metadata request fails
        self.asked = 0

    def list_topics(self, timeout: float) -> Metadata:
        self.asked += 1
        if self.brokers is None:
            raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no usable brokers"))
        return Metadata(self.brokers)

    def poll(self, timeout: float) -> int:
        return 0


@pytest.mark.parametrize(
    ("own", "fresh", "cut_off"),
    [
        (1, 1, False),  # it reaches the cluster
        (None, 1, True),  # it cannot, a new client can
        (None, None, False),  # nobody can: the cluster is down
        (None, 0, False),  # a new client hears of no broker yet (a broker starting up)
    ],
)
def test_a_client_is_cut_off_only_when_a_new_one_reaches_the_cluster(
    monkeypatch: pytest.MonkeyPatch, own: int | None, fresh: int | None, cut_off: bool
) -> None:
    probes: list[Client] = []

    def admin(settings: dict[str, Any]) -> Client:
        assert settings == {"bootstrap.servers": "b:9092"}
        probes.append(Client(fresh))
        return probes[-1]

    monkeypatch.setattr(_clients, "AdminClient", admin)
    client = Client(own)
    assert _clients.cut_off(cast(Consumer, client), {"bootstrap.servers": "b:9092"}) is cut_off
    assert client.asked == 1
    assert len(probes) == (0 if own is not None else 1), "a new client only when needed"

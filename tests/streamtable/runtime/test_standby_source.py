"""A standby of a source table (its changelog is the input topic) must skip the input records
the table's serde rejects, as the restorer does: they went to the DLQ, never into the active
store. Found by the service's chaos harness (standbys 1, a broker bounce): the standby had
copied a malformed position ('"..."', a JSON string) into its replica; once active, the next
update of that key made the commit's cache flush read it back, and the app failed with
"SerializationError: position must be a JSON object, got str"."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, TopicPartition

import streamtable as st
from streamtable.runtime._standby import StandbyTasks
from streamtable.runtime._statedir import StateDirectory
from us_shareholders.records import POSITION

pytestmark = pytest.mark.unit

TOPIC = "positions"


class FakeMessage:
    def __init__(self, offset: int, key: bytes, value: bytes | None) -> None:
        self._offset, self._key, self._value = offset, key, value

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return TOPIC

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000)


class FakeConsumer:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self.messages = messages

    def assign(self, _tps: Any) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out, self.messages = self.messages, []
        return out


def test_a_standby_of_a_source_table_skips_what_its_serde_rejects(tmp_path: Path) -> None:
    builder = st.StreamsBuilder()
    builder.table(TOPIC, key_serde=st.serde.STRING, value_serde=POSITION, store="positions")
    topology = builder.build()
    config = st.StreamsConfig(
        application_id="standby-src", bootstrap_servers="127.0.0.1:1", state_dir=tmp_path
    )
    good = b'{"id": "p1", "client": "c1", "ticker": "AAPL", "exchange": "NYSE", "amount": 1}'
    consumer = FakeConsumer(
        [FakeMessage(0, b"p1", good), FakeMessage(1, b"p1", b'"not a position"'),
         FakeMessage(2, b"p2", b"not json")]
    )  # fmt: skip

    def committed(tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 3) for tp in tps]

    standbys = StandbyTasks(
        topology, config, StateDirectory(tmp_path, "standby-src"), cast(Consumer, consumer),
        committed,
    )  # fmt: skip
    standbys.reconcile({(0, 0)})
    assert standbys.poll() == 3
    assert standbys.positions() == {(TOPIC, 0): 3}
    replica = standbys._by_tp[(TOPIC, 0)].stores[(TOPIC, 0)]
    assert dict(replica.all()) == {"p1": POSITION.deserialize(good)}

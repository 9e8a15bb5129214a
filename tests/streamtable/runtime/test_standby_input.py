"""A standby replica tailing a table's input topic skips the records the active task sent to the
dead-letter topic (they do not deserialize), as a restore does: found by the fault harness,
where a promoted standby held a malformed position and the first commit's flush failed on it
(chaos seed 43: the instance stopped in ERROR)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition

import streamtable as st
from streamtable.runtime._standby import StandbyTasks
from streamtable.runtime._statedir import StateDirectory
from streamtable.state import RocksDBBytesStore
from us_shareholders.records import POSITION

pytestmark = pytest.mark.unit

GOOD = b'{"id": "p1", "client": "c1", "ticker": "AAPL", "exchange": "NYSE", "amount": 1}'


class FakeMessage:
    def __init__(self, topic: str, offset: int, key: bytes, value: bytes | None) -> None:
        self._t, self._o, self._k, self._v = topic, offset, key, value

    def topic(self) -> str:
        return self._t

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._o

    def error(self) -> None:
        return None

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes | None:
        return self._v

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000 + self._o)


class FakeConsumer:
    def __init__(self, messages: list[FakeMessage]) -> None:
        self.messages = messages

    def assign(self, _tps: list[TopicPartition]) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out, self.messages = self.messages, []
        return out

    def close(self) -> None:
        pass


def test_a_standby_skips_input_records_that_do_not_deserialize(tmp_path: Path) -> None:
    builder = st.StreamsBuilder()
    builder.table("positions", key_serde=st.serde.STRING, value_serde=POSITION, store="held")
    topology = builder.build()
    config = st.StreamsConfig(application_id="standby-input", bootstrap_servers="unused:9092",
                              state_dir=tmp_path, num_standby_replicas=1)  # fmt: skip
    messages = [
        FakeMessage("positions", 0, b"p1", GOOD),
        FakeMessage("positions", 1, b"p1", b"not json"),
        FakeMessage("positions", 2, b"p2", b'{"id": "p2"}'),
    ]

    def committed(tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 3) for tp in tps]

    standbys = StandbyTasks(
        topology, config, StateDirectory(tmp_path, "standby-input"),
        FakeConsumer(messages),  # type: ignore[arg-type]
        committed,
    )  # fmt: skip
    standbys.reconcile({(0, 0)})
    assert standbys.poll() == 3
    standbys.close()

    engine = RocksDBBytesStore(tmp_path / "standby-input" / "0_0" / "held")
    store: dict[bytes, Any] = dict(engine.range(None, None))
    engine.close()
    assert list(store) == [b"p1"]  # the bad record at offset 1 did not replace p1; p2 never came
    assert store[b"p1"].endswith(GOOD)

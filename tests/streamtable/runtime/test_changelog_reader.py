"""The one changelog reader (active restore, standbys, global tables): a partition with an end
completes only at that end, never at an end-of-partition below it (read_committed reports EOF
at the last stable offset while a transaction is open); a limit pauses a partition until it is
raised; the record check drops what does not deserialize; a stuck consumer is replaced at the
positions read so far."""

from __future__ import annotations

from typing import Any, cast

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from streamtable.runtime import _changelog
from streamtable.runtime._changelog import ChangelogPartition, ChangelogReader

pytestmark = pytest.mark.unit

TP = ("app-s-changelog", 0)


class Eof:
    def code(self) -> int:
        return KafkaError._PARTITION_EOF


class Msg:
    def __init__(self, offset: int, key: bytes | None = b"k", value: bytes | None = b"v",
                 eof: bool = False, tp: tuple[str, int] = TP) -> None:  # fmt: skip
        self._offset, self._key, self._value, self._eof, self._tp = offset, key, value, eof, tp

    def topic(self) -> str:
        return self._tp[0]

    def partition(self) -> int:
        return self._tp[1]

    def offset(self) -> int:
        return self._offset

    def error(self) -> Eof | None:
        return Eof() if self._eof else None

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def timestamp(self) -> tuple[int, int]:
        return 1, 1000 + self._offset


class FakeConsumer:
    def __init__(self, *batches: list[Msg], fetched: int = -1001, stable: int = 0) -> None:
        self.batches = list(batches)
        self.assigned: list[tuple[str, int, int]] = []
        self.paused: list[tuple[str, int]] = []
        self.resumed: list[tuple[str, int]] = []
        self.seeks: list[tuple[str, int, int]] = []
        self.fetched, self.stable = fetched, stable
        self.closed = False

    def assign(self, tps: list[TopicPartition]) -> None:
        self.assigned = [(tp.topic, tp.partition, tp.offset) for tp in tps]

    def consume(self, num_messages: int, timeout: float) -> list[Msg]:
        """The next batch; nothing of a paused partition (its batches wait for the resume)."""
        stopped = set(self.paused) - set(self.resumed)
        for i, batch in enumerate(self.batches):
            if not {(m.topic(), m.partition()) for m in batch} & stopped:
                return self.batches.pop(i)
        return []

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))

    def pause(self, tps: list[TopicPartition]) -> None:
        self.paused += [(tp.topic, tp.partition) for tp in tps]

    def resume(self, tps: list[TopicPartition]) -> None:
        self.resumed += [(tp.topic, tp.partition) for tp in tps]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float, cached: bool) -> Any:
        return 0, self.stable

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.fetched) for tp in tps]

    def close(self) -> None:
        self.closed = True


class Store:
    name = "s"

    def __init__(self) -> None:
        self.applied: list[tuple[bytes, bytes | None, int]] = []

    def restore_batch(self, records: list[tuple[bytes, bytes | None, int]]) -> None:
        self.applied += records


def reader(consumer: FakeConsumer, **kw: Any) -> ChangelogReader:
    return ChangelogReader(cast(Consumer, consumer), "restore", **kw)


def test_a_partition_completes_at_its_end_not_at_an_eof_below_it() -> None:
    store = Store()
    consumer = FakeConsumer([Msg(0), Msg(1), Msg(2, eof=True)], [Msg(4), Msg(5)])
    r = reader(consumer)
    r.add([ChangelogPartition(TP, cast(Any, store), OFFSET_BEGINNING, end=6)])
    assert consumer.assigned == [(*TP, OFFSET_BEGINNING)]
    read, finished = r.read(1000, 0)
    assert (read, finished) == (4, [TP])  # the EOF at 2 (an open transaction) did not end it
    assert [o for _, _, o in store.applied] == [1000, 1001, 1004, 1005]
    assert r.parts[TP].position == 6


def test_an_eof_at_the_end_completes_and_records_past_the_end_are_not_applied() -> None:
    store = Store()
    consumer = FakeConsumer([Msg(0), Msg(1, eof=True)], [Msg(1), Msg(2)])
    r = reader(consumer)
    r.add([ChangelogPartition(TP, cast(Any, store), 0, end=1)])
    assert r.read(1000, 0) == (1, [TP])
    assert r.read(1000, 0) == (0, [])  # completed: nothing more is read into it
    assert len(store.applied) == 1


def test_a_limit_pauses_the_partition_until_it_is_raised() -> None:
    store = Store()
    consumer = FakeConsumer([Msg(0), Msg(1), Msg(2)], [Msg(2), Msg(3)])
    r = reader(consumer)
    r.add([ChangelogPartition(TP, cast(Any, store), 0, limit=2)])
    assert r.read(1000, 0) == (2, [])
    assert consumer.seeks == [(*TP, 2)]
    assert consumer.paused == [TP]
    r.set_limit(TP, 10)
    assert consumer.resumed == [TP]
    assert r.read(1000, 0) == (2, [])
    assert r.parts[TP].position == 4


def test_the_check_drops_records_but_the_position_moves_past_them() -> None:
    store = Store()
    consumer = FakeConsumer([Msg(0, value=b"good"), Msg(1, value=b"bad"), Msg(2, key=None)])
    r = reader(consumer)
    r.add([ChangelogPartition(TP, cast(Any, store), 0, check=lambda k, v: v != b"bad")])
    assert r.read(1000, 0) == (3, [])
    assert [v for _, v, _ in store.applied] == [b"good"]  # a null key is never applied either
    assert r.parts[TP].position == 3


def test_a_stuck_consumer_is_replaced_at_the_positions_read_so_far(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 0.0)
    first = FakeConsumer([Msg(0), Msg(1)], fetched=2, stable=9)  # 7 records it never fetches
    fresh = FakeConsumer()
    r = reader(first, renew=lambda: cast(Consumer, fresh))
    r.add([ChangelogPartition(TP, cast(Any, Store()), 0, end=9)])
    r.read(1000, 0)
    r.watch()
    assert r.replacements == 1
    assert fresh.assigned == [(*TP, 2)]


def test_a_consumer_waiting_at_the_last_stable_offset_is_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 0.0)
    waiting = FakeConsumer([Msg(0), Msg(1)], fetched=2, stable=2)
    r = reader(waiting, renew=lambda: pytest.fail("a waiting consumer was replaced"))
    r.add([ChangelogPartition(TP, cast(Any, Store()), 0)])
    r.read(1000, 0)
    r.watch()
    assert r.replacements == 0


def test_a_partition_paused_at_its_limit_is_resumed_before_the_next_assign() -> None:
    """librdkafka keeps a partition paused across assign() until it is resumed. The reader
    takes every partition of a new assignment as fetched again, so it resumes a paused one
    first, or it would hand nothing over, unknown to the reader, until the consumer was
    replaced (standbys of chaos seed 888458). A paused partition removed is resumed too."""
    other = (TP[0], TP[1] + 1)
    consumer = FakeConsumer([Msg(0), Msg(1), Msg(2)])
    r = reader(consumer)
    r.add([ChangelogPartition(TP, cast(Any, Store()), 0, limit=2)])
    r.read(1000, 0)
    assert consumer.paused == [TP]
    r.add([ChangelogPartition(other, cast(Any, Store()), 0)])
    assert consumer.resumed == [TP]
    assert consumer.assigned == [(*TP, 2), (*other, 0)]
    assert not r.parts[TP].paused
    r.read(1000, 0)  # nothing: the fake hands nothing over
    r.parts[TP].paused = True  # paused at its limit again
    r.remove([TP])
    assert consumer.resumed == [TP, TP]
    assert consumer.assigned == [(*other, 0)]

"""The committer without a broker: a transactional call that never returns (librdkafka's
``send_offsets_to_transaction`` while the group coordinator is unreachable) fails the commit at
its deadline, and under exactly_once_v2 a caught-up task
commits the consumer's position (past the transaction markers)."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any, cast

import pytest
from confluent_kafka import Producer, TopicPartition

from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._commit import Committer
from streamtable.runtime._producer import StreamsProducer, TransactionAborted
from streamtable.runtime.metrics import StreamsMetrics
from streamtable.runtime.topics import TopicPlan

pytestmark = pytest.mark.unit


class FakeProducer:
    def __init__(self, stuck: bool) -> None:
        self.stuck = stuck
        self.release = threading.Event()
        self.sent_offsets: list[TopicPartition] = []
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], _g: Any, _t: Any) -> None:
        self.calls.append("send_offsets")
        if self.stuck:
            self.release.wait(60)  # ignores its timeout, as librdkafka does
        self.sent_offsets = offsets

    def commit_transaction(self, _t: float) -> None:
        self.calls.append("commit")

    def abort_transaction(self, _t: float) -> None:
        self.calls.append("abort")


class FakeConsumer:
    def __init__(self, position: int) -> None:
        self._position = position

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._position) for tp in tps]

    def consumer_group_metadata(self) -> object:
        return object()


class FakeCollector:
    def __init__(self) -> None:
        self.changelog_offsets: dict[tuple[str, int], int] = {}
        self.before_send: Any = None

    def raise_delivery_errors(self) -> None:
        pass


class FakeCore:
    delivered = 0

    def flush(self) -> None:
        pass

    def after_delivered(self) -> None:
        self.delivered += 1


class FakeTask:
    """What the committer uses of a StreamTask: processed ``input`` up to offset 41."""

    task_id = "0_0"
    partition = 0
    topics = ("input",)

    def __init__(self) -> None:
        self.core = FakeCore()
        self.consumed = {"input": 42}
        self.committed: dict[str, int] = {}

    def uncommitted(self) -> dict[str, int]:
        return {t: o for t, o in self.consumed.items() if self.committed.get(t) != o}

    def mark_committed(self, offsets: Mapping[str, int]) -> None:
        self.committed.update(offsets)

    def write_checkpoint(self, _written: Any, force: bool = True) -> None:
        pass


def streams_producer(*clients: object, transactional: bool = True) -> StreamsProducer:
    """A :class:`StreamsProducer` over ``clients``: the first, then one more per replace()."""
    made = iter(clients)
    return StreamsProducer(lambda: cast(Producer, next(made)), transactional=transactional)


def committer(producer: FakeProducer, position: int, *spares: FakeProducer) -> Committer:
    return Committer(
        cast(Any, FakeConsumer(position)),
        streams_producer(producer, *spares),
        cast(Any, FakeCollector()),
        True,
        StreamsMetrics("test"),
        timeout_s=0.3,
        deadline_grace_s=0.2,
    )


def test_a_transactional_call_that_never_returns_fails_the_commit_at_its_deadline() -> None:
    producer = FakeProducer(stuck=True)
    commits = committer(producer, 42, FakeProducer(stuck=False))
    started = time.monotonic()
    try:
        with pytest.raises(TransactionAborted) as raised:
            commits.commit([cast(Any, FakeTask())])
        assert raised.value.fatal
        assert time.monotonic() - started < 5.0
        assert commits.producer_lost
        with pytest.raises(TransactionAborted):
            commits.producer.begin()  # the given-up producer is never used again
        commits.producer.replace()
        assert not commits.producer_lost
        assert commits.producer.client is not cast(Any, producer)
    finally:
        producer.release.set()


def test_exactly_once_commits_the_position_past_a_trailing_marker() -> None:
    producer = FakeProducer(stuck=False)
    task = FakeTask()
    committer(producer, 43).commit([cast(Any, task)])  # offset 42 is a marker
    assert [(tp.topic, tp.offset) for tp in producer.sent_offsets] == [("input", 43)]
    assert task.committed == {"input": 43}


class _ClosingTask:
    def __init__(self, committed: dict[str, int], replay_until: dict[str, int]) -> None:
        self.task_id = "t"
        self.partition = 3
        self.committed = committed
        self.replay_until = replay_until


def test_a_clean_close_marks_only_offsets_past_the_replay_window() -> None:
    """The next owner skips the one-change-per-record replay only where this task has replayed
    everything a previous owner might have forwarded; elsewhere the mark stays off."""
    from streamtable.runtime._commit import CLEAN_CLOSE, _closing_offsets

    task = _ClosingTask({"in": 10, "rep": 7, "quiet": 4}, {"rep": 20})
    offsets = {"t": {"in": 12}}
    task_id = "t"
    found = {
        (tp.topic, tp.offset, tp.metadata)
        for tp in _closing_offsets([cast(Any, task)], {task_id: offsets[task_id]})
    }
    # "in" moved on and has no window: marked; "quiet" did not move: marked at its offset;
    # "rep" is mid-replay and unchanged since its last commit: not committed, so not marked.
    assert found == {("in", 12, CLEAN_CLOSE), ("quiet", 4, CLEAN_CLOSE)}


class _UnreachableBroker:
    """A producer whose records are not acknowledged (the broker is down) and a consumer that
    records offset commits."""

    def __init__(self) -> None:
        self.commits: list[list[TopicPartition]] = []

    def flush(self, _timeout: float) -> int:
        return 17  # records still queued

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append(offsets)


def test_at_least_once_a_commit_the_broker_does_not_acknowledge_is_deferred() -> None:
    """Under at_least_once a broker outage defers the commit (offsets stay uncommitted, the
    records stay queued) instead of stopping the app: found by the fault harness, where a
    broker stopped for 18 s put an instance in ERROR (chaos seed 51)."""
    from streamtable.runtime._commit import CommitDeferred

    broker = _UnreachableBroker()
    commits = Committer(
        cast(Any, broker), streams_producer(broker, transactional=False),
        cast(Any, FakeCollector()), False, StreamsMetrics("test"), timeout_s=0.1,
    )  # fmt: skip
    task = FakeTask()
    with pytest.raises(CommitDeferred):
        commits.commit([cast(Any, task)])
    assert broker.commits == []
    assert task.committed == {}  # still uncommitted: the next commit tries again
    assert task.core.delivered == 0  # nothing acknowledged: emit-final logs nothing yet


class Journal:
    """Every client of a commit, each call written to one list in the order it happens."""

    def __init__(self, position: int = 42) -> None:
        self.calls: list[str] = []
        self._position = position

    # the producer client
    def produce(self, topic: str, _value: Any, _key: Any, partition: int, **kw: Any) -> None:
        self.calls.append(f"produce {topic}")

    def flush(self, _timeout: float) -> int:
        self.calls.append("flush producer")
        return 0

    def begin_transaction(self) -> None:
        self.calls.append("begin transaction")

    def send_offsets_to_transaction(self, offsets: list[TopicPartition], _g: Any, _t: Any) -> None:
        self.calls.append(f"send offsets {[(tp.topic, tp.offset) for tp in offsets]}")

    def commit_transaction(self, _t: float) -> None:
        self.calls.append("commit transaction")

    # the consumer
    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.calls.append(f"commit offsets {[(tp.topic, tp.offset) for tp in offsets]}")

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._position) for tp in tps]

    def consumer_group_metadata(self) -> object:
        return object()

    # the repartition purger
    def maybe_purge(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("purge")


class ForwardingCore(FakeCore):
    """Its record cache holds one change: flushed, it goes downstream to ``out``."""

    def __init__(self, journal: Journal, collector: KafkaRecordCollector) -> None:
        self.journal = journal
        self.collector = collector

    def flush(self) -> None:
        self.journal.calls.append("flush caches")
        self.collector.send("out", b"k", b"v", 0, 0, None)

    def after_delivered(self) -> None:  # as emit-final logs its close time
        self.journal.calls.append("after delivered")
        self.collector.send("log", b"k", b"v", 0, 0, None)


class CachingTask(FakeTask):
    def __init__(self, journal: Journal, collector: KafkaRecordCollector) -> None:
        super().__init__()
        self.journal = journal
        self.core = ForwardingCore(journal, collector)

    def write_checkpoint(self, _written: Any, force: bool = True) -> None:
        self.journal.calls.append("checkpoint")


def journaled_commit(exactly_once: bool, closing: bool = False) -> list[str]:
    journal = Journal()
    producer = streams_producer(journal, transactional=exactly_once)
    collector = KafkaRecordCollector(producer, TopicPlan({"out": 1, "log": 1}, {}))
    commits = Committer(
        cast(Any, journal), producer, collector, exactly_once, StreamsMetrics("order"),
        purger=cast(Any, journal),
    )  # fmt: skip
    commits.commit([cast(Any, CachingTask(journal, collector))], closing=closing)
    return journal.calls


def test_at_least_once_commits_in_the_documented_order() -> None:
    """Caches, then what they forwarded to the producer, the producer flushed, what must not
    run ahead of the output logged, the offsets, the checkpoint, the purge: offsets committed
    before the records they cover are acknowledged would lose those records in a crash."""
    assert journaled_commit(exactly_once=False) == [
        "flush caches",
        "produce out",
        "flush producer",
        "after delivered",
        "produce log",
        "commit offsets [('input', 42)]",
        "checkpoint",
        "purge",
    ]


def test_exactly_once_commits_in_one_transaction_in_the_documented_order() -> None:
    """The records and the offsets in one transaction; a checkpoint only when closing."""
    assert journaled_commit(exactly_once=True) == [
        "flush caches",
        "begin transaction",
        "produce out",
        "after delivered",
        "produce log",
        "send offsets [('input', 42)]",
        "commit transaction",
        "purge",
    ]
    assert journaled_commit(exactly_once=True, closing=True)[-2:] == ["checkpoint", "purge"]

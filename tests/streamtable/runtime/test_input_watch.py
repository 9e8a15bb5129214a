"""An input partition of a running task that the group consumer no longer fetches (chaos seed
888458: one handed nothing over for 3 minutes, and nothing said so). The watch asks the broker
for the end of a partition that has stood still for 30 s: records waiting there get it resumed
and sought to where it stands, with a warning; a failed seek, or records still waiting at the
next look, get the group consumer replaced. A partition at its end, or one that moves again, is
left alone, and a broker that does not answer gives no verdict."""

from __future__ import annotations

import logging
import threading
from types import SimpleNamespace
from typing import Any, cast

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamtable.runtime import _clients
from streamtable.runtime._inputwatch import STUCK_INPUT_S, InputWatch
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


class Consumer:
    """Partition 0 stands at 20 of 50; partition 1 is at its end (20). ``fetching``: a seek
    gets partition 0 fetched again (its position moves to 50)."""

    def __init__(self, fetching: bool = False, seek_fails: bool = False) -> None:
        self.fetching = fetching
        self.seek_fails = seek_fails
        self.seek_error = KafkaError._STATE
        self.positions = {0: 20, 1: 20}
        self.calls: list[str] = []
        self.answering = True
        self.group_committed: int | None = 35  # None: held back by an open transaction

    def committed(self, tps: list[TopicPartition], timeout: float = 10) -> list[TopicPartition]:
        self.calls.append("committed")
        if self.group_committed is None:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "Failed to get committed offsets")
            )
        return [TopicPartition(tp.topic, tp.partition, self.group_committed) for tp in tps]

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float = 10, cached: bool = False
    ) -> tuple[int, int]:
        if not cached and not self.answering:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "timed out", retriable=True))
        return 0, 50 if tp.partition == 0 else 20

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.positions[tp.partition]) for tp in tps]

    def resume(self, tps: list[TopicPartition]) -> None:
        self.calls += [f"resume {tp.topic}[{tp.partition}]" for tp in tps]

    def seek(self, tp: TopicPartition) -> None:
        if self.seek_fails:
            raise KafkaException(
                KafkaError(self.seek_error, "Failed to seek to offset 20: Local: Erroneous state")
            )
        self.calls.append(f"seek {tp.topic}[{tp.partition}]@{tp.offset}")
        if self.fetching:
            self.positions[tp.partition] = 50


def tasks() -> list[Any]:
    return [
        SimpleNamespace(
            topics=["events"],
            partition=p,
            serde_stores={},
            task_id=f"0_{p}",
            consumed={},
            committed={"events": 20},
        )
        for p in (0, 1)
    ]


def watch(
    consumer: Consumer, seconds: float, watcher: InputWatch | None = None, knowing: bool = True
) -> InputWatch:
    """A gauges pass every 5 s for ``seconds`` (a fake clock); ``knowing``: the tasks know
    their committed offsets (else they were just created, and know none)."""
    watcher = watcher or InputWatch()
    running = tasks()
    for task in running if not knowing else ():
        task.committed = {}
    now = 1000.0
    while now <= 1000.0 + seconds:
        inputs = [
            (
                task,
                "events",
                consumer.position([TopicPartition("events", task.partition)])[0].offset,
            )
            for task in running
        ]
        watcher.watch(consumer, inputs, now)  # type: ignore[arg-type]
        now += 5.0
    return watcher


def test_a_partition_records_wait_on_is_repaired_then_its_consumer_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = Consumer()
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.app"):
        watcher = watch(consumer, STUCK_INPUT_S)
    assert consumer.calls == ["resume events[0]", "seek events[0]@20"]
    assert [r.getMessage() for r in caplog.records] == [
        "input events[0] of running task 0_0 has not moved for 30s: at offset 20, 30 record(s) "
        "before its end (consumer position 20, committed 20): resumed and fetched again from 20"
    ]
    assert watcher.stuck is None, "a repair first"
    watch(consumer, 2 * STUCK_INPUT_S, watcher)
    assert watcher.stuck is not None
    assert watcher.stuck.startswith("input events[0] of running task 0_0 has not moved for 60s")
    assert watcher.stuck.endswith("after it was resumed and sought there")


def test_a_partition_fetched_again_after_the_repair_is_left_alone() -> None:
    consumer = Consumer(fetching=True)
    watcher = watch(consumer, 3 * STUCK_INPUT_S)
    assert consumer.calls == ["resume events[0]", "seek events[0]@20"]
    assert watcher.stuck is None


def test_a_failed_seek_means_its_fetcher_does_not_run() -> None:
    watcher = watch(Consumer(seek_fails=True), STUCK_INPUT_S)
    assert watcher.stuck is not None
    assert "its fetcher does not run" in watcher.stuck
    assert "Erroneous state" in watcher.stuck


def test_a_seek_overtaken_by_a_rebalance_gives_no_verdict() -> None:
    """librdkafka pauses the assignment when a rebalance starts; a seek overtaken by that is
    dropped as outdated: the rebalance hands the partitions out afresh."""
    consumer = Consumer(seek_fails=True)
    consumer.seek_error = KafkaError._OUTDATED
    watcher = watch(consumer, 3 * STUCK_INPUT_S)
    assert watcher.stuck is None


def test_no_verdict_while_the_broker_does_not_answer() -> None:
    consumer = Consumer()
    consumer.answering = False
    watcher = watch(consumer, 4 * STUCK_INPUT_S)
    assert consumer.calls == []
    assert watcher.stuck is None


def test_a_partition_without_a_position_stands_at_its_tasks_next_offset() -> None:
    """Nothing handed over since the assignment (position -1001): the task's next offset to
    process, else its committed offset, stands for it."""
    consumer = Consumer()
    consumer.positions = {0: -1001, 1: -1001}
    watch(consumer, STUCK_INPUT_S)
    assert consumer.calls == ["resume events[0]", "seek events[0]@20"]


def test_without_any_known_offset_it_stands_at_the_groups_committed_offset() -> None:
    """No position, and a task created just now (after a restart): the group's committed
    offset, read then, is where it stands, never the start of the partition (chaos seed
    225904: sought to 0 under exactly-once, a dead-letter record written twice)."""
    consumer = Consumer()
    consumer.positions = {0: -1001, 1: -1001}
    watch(consumer, STUCK_INPUT_S, knowing=False)
    assert "seek events[0]@35" in consumer.calls
    assert not any(c.startswith("seek") and c != "seek events[0]@35" for c in consumer.calls)


def test_no_verdict_while_an_open_transaction_holds_the_committed_offsets() -> None:
    consumer = Consumer()
    consumer.positions = {0: -1001, 1: -1001}
    consumer.group_committed = None
    watcher = watch(consumer, 4 * STUCK_INPUT_S, knowing=False)
    assert not [c for c in consumer.calls if c.startswith(("seek", "resume"))]
    assert watcher.stuck is None


def test_with_nothing_committed_it_stands_where_the_reset_starts() -> None:
    consumer = Consumer()
    consumer.positions = {0: -1001, 1: -1001}
    consumer.group_committed = -1001
    watch(consumer, STUCK_INPUT_S, knowing=False)
    seeks = [c for c in consumer.calls if c.startswith("seek")]
    assert seeks == ["seek events[0]@0", "seek events[1]@0"]


class GroupConsumer(Consumer):
    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.calls.append(f"subscribe {topics}")

    def close(self) -> None:
        self.closed.set()


def test_the_thread_replaces_the_consumer_of_a_stuck_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its tasks are committed and closed as on a revocation (none here), a new consumer joins
    the group, and the old one is closed; nothing held or seen of the old one is kept."""
    old, new = GroupConsumer(), GroupConsumer()
    thread = offline_thread("app", consumer=old)
    monkeypatch.setattr(_clients, "main_consumer", lambda config: new)
    thread.tasks.holds.held.add(("events", 0))
    thread.commits.inputs.stuck = "input events[0] of running task 0_0 has not moved for 60s"
    thread.assignment_seen = True
    thread._replace_stuck_consumer(thread.commits.inputs.stuck)
    assert thread.clients.consumer is cast(Any, new)
    assert thread.clients.committer.consumer is cast(Any, new)
    assert new.calls == ["subscribe ['events']"]
    assert old.calls == ["resume events[0]"], "held partitions resumed while still assigned"
    assert old.closed.wait(10)
    assert not thread.tasks.holds.held
    assert thread.commits.inputs.stuck is None
    assert not thread.assignment_seen

"""``TaskManager``: the life of the active tasks, with real tasks and stores (RocksDB) and fake
Kafka clients. A task is created RESTORING, runs once restored (its partitions resumed), and is
closed with its state kept and checkpointed, or wiped; partitions lost are dropped: the open
transaction aborted and the record caches discarded, nothing of them committed."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

import streamtable as st
from streamtable.runtime._statedir import read_checkpoint
from streamtable.runtime._thread import StreamThread
from streamtable.runtime.state import TaskState
from tests.streamtable.runtime.test_redelivery import Message
from tests.support.offline import IdleProducer, IdleRestorer, offline_thread

pytestmark = pytest.mark.unit

CHANGELOG = "tm-counts-changelog"


class GroupConsumer:
    """The group consumer: every input's committed offset is ``committed`` (-1001: none)."""

    def __init__(self, committed: int = -1001) -> None:
        self._committed = committed
        self.resumed: list[tuple[str, int]] = []
        self.paused: list[tuple[str, int]] = []
        self.seeks: list[tuple[str, int, int]] = []
        self.commits: list[list[tuple[str, int, int]]] = []

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._committed) for tp in tps]

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float = 10, cached: bool = False
    ) -> tuple[int, int]:
        return (0, 0)

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])

    def resume(self, tps: list[TopicPartition]) -> None:
        self.resumed += [(tp.topic, tp.partition) for tp in tps]

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in tps]

    def pause(self, tps: list[TopicPartition]) -> None:
        self.paused += [(tp.topic, tp.partition) for tp in tps]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class TransactionalProducer(IdleProducer):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def begin_transaction(self) -> None:
        self.calls.append("begin")

    def abort_transaction(self, timeout: float) -> None:
        self.calls.append("abort")


def counting() -> st.Topology:
    """Counts ``events`` per key in store ``counts`` (changelogged, RocksDB): one
    sub-topology, tasks 0_0 and 0_1."""
    builder = st.StreamsBuilder()
    builder.stream(
        "events", key_serde=st.serde.STRING, value_serde=st.serde.STRING
    ).group_by_key().count(store="counts")
    return builder.build()


def manager(
    consumer: GroupConsumer | None = None, producer: IdleProducer | None = None, **config: Any
) -> tuple[StreamThread, IdleRestorer]:
    restorer = IdleRestorer()
    thread = offline_thread(
        "tm",
        consumer=consumer or GroupConsumer(),
        producer=producer,
        restorer=restorer,
        topology=counting(),
        **config,
    )
    return thread, restorer


def running(thread: StreamThread, *partitions: int) -> None:
    thread.tasks.create([("events", p) for p in partitions])
    for p in partitions:
        thread.tasks.task_running(thread.tasks.tasks[f"0_{p}"])


def active_tasks(thread: StreamThread) -> float | None:
    return thread.ctx.metrics.registry.get_sample_value("streamtable_active_tasks")


def test_create_starts_each_assigned_task_restoring() -> None:
    thread, restorer = manager()
    thread.tasks.create([("events", 0), ("events", 1)])
    tasks = thread.tasks.tasks
    assert {t: task.state for t, task in tasks.items()} == {
        "0_0": TaskState.RESTORING,
        "0_1": TaskState.RESTORING,
    }
    assert thread.tasks.by_partition == {("events", 0): tasks["0_0"], ("events", 1): tasks["0_1"]}
    # At least once, a store with a changelog of its own restores to the changelog's end.
    assert restorer.added == [("0_0", {}), ("0_1", {})]
    assert thread.tasks.running() == []
    assert active_tasks(thread) == 2.0


def test_exactly_once_plans_the_restore_after_the_committed_offsets() -> None:
    """They are read first: a transaction of the previous owner holding them must have ended
    before the changelogs' ends say what it committed (chaos seed 189807)."""
    thread, restorer = manager(GroupConsumer(committed=40), processing_guarantee="exactly_once_v2")
    thread.tasks.create([("events", 1)])
    assert restorer.added == [("0_1", {"events": 40})]


def test_a_restored_task_runs_and_its_partition_resumes() -> None:
    consumer = GroupConsumer()
    thread, _ = manager(consumer)
    running(thread, 0)
    task = thread.tasks.tasks["0_0"]
    assert task.state is TaskState.RUNNING
    assert thread.tasks.running() == [task]
    assert consumer.resumed == [], "nothing was held"
    # At least once, nothing committed yet: where it starts, without the clean-close mark.
    assert consumer.commits == [[("events", 0, 0)]]
    assert task.replay_until == {}


def test_close_keeps_the_state_with_a_checkpoint_of_the_changelog() -> None:
    thread, _ = manager()
    running(thread, 0, 1)
    thread.clients.collector.changelog_offsets[(CHANGELOG, 0)] = 7  # delivered up to 6
    thread.tasks.close([thread.tasks.tasks["0_0"]])
    directory = thread.ctx.state_dir.task_dir("0_0")
    assert (directory / "counts").is_dir()
    assert read_checkpoint(directory / ".checkpoint") == {(CHANGELOG, 0): 7}
    assert list(thread.tasks.tasks) == ["0_1"]
    assert list(thread.tasks.by_partition) == [("events", 1)]
    assert active_tasks(thread) == 1.0


def test_close_without_keeping_the_state_wipes_it() -> None:
    thread, _ = manager()
    running(thread, 0)
    thread.tasks.close(list(thread.tasks.tasks.values()), keep_state=False)
    assert not thread.ctx.state_dir.task_dir("0_0").exists()
    assert thread.tasks.tasks == {}
    assert active_tasks(thread) == 0.0


def test_a_restoring_task_closes_out_of_the_restore_without_a_checkpoint() -> None:
    thread, restorer = manager()
    thread.tasks.create([("events", 0)])
    thread.tasks.close_all()
    directory = thread.ctx.state_dir.task_dir("0_0")
    assert restorer.removed == ["0_0"]
    assert (directory / "counts").is_dir()
    assert not (directory / ".checkpoint").exists()


def test_exactly_once_close_writes_no_checkpoint() -> None:
    """Under exactly once a checkpoint exists only while not processing: the closing commit
    writes it, not the close (a dirty close must leave none)."""
    thread, _ = manager(GroupConsumer(committed=0), processing_guarantee="exactly_once_v2")
    running(thread, 0)
    thread.clients.collector.changelog_offsets[(CHANGELOG, 0)] = 7
    thread.tasks.close_all()
    directory = thread.ctx.state_dir.task_dir("0_0")
    assert (directory / "counts").is_dir()
    assert not (directory / ".checkpoint").exists()


def test_drop_all_aborts_the_transaction_and_discards_the_caches() -> None:
    producer = TransactionalProducer()
    thread, _ = manager(
        GroupConsumer(committed=0), producer, processing_guarantee="exactly_once_v2"
    )
    running(thread, 0)
    task = thread.tasks.tasks["0_0"]
    task.core.process("events", b"k", b"v", 1_000, 0)  # counted in the record cache
    thread.clients.collector.send("copy", b"k", b"v", 1_000, 0, None)  # opens the transaction
    assert thread.ctx.budget.used > 0
    assert thread.clients.producer.in_transaction
    thread.tasks.restart_pending = [("events", 0)]
    thread.tasks.drop_all()
    assert producer.calls == ["begin", "abort"]
    assert not thread.clients.producer.in_transaction
    assert thread.ctx.budget.used == 0, "the dropped cache still holds its share of the budget"
    assert [r["topic"] for r in producer.produced] == ["copy"], "the cache was flushed"
    assert task.state is TaskState.CLOSED
    assert thread.tasks.tasks == {}
    assert thread.tasks.restart_pending is None


def test_drop_all_replaces_a_producer_that_was_given_up() -> None:
    thread, _ = manager(processing_guarantee="exactly_once_v2")
    thread.clients.producer.give_up()
    thread.tasks.drop_all()
    assert not thread.clients.producer.lost


def test_a_record_of_a_restoring_task_is_held_until_the_task_runs() -> None:
    """Not paused at the assignment (a pause right after assign() can keep a partition from
    ever being fetched: see runtime/_holds.py): the partition is paused when it hands a record
    over for a task that does not run, sought back to that record, and resumed once the task
    runs. The other task's partition, which handed nothing over, is neither paused nor
    resumed."""
    consumer = GroupConsumer()
    thread, _ = manager(consumer)
    thread.tasks.create([("events", 0), ("events", 1)])
    thread.process([Message("events", 0, o) for o in (7, 8, 9)])  # type: ignore[misc]
    thread.process([Message("events", 0, 7)])  # type: ignore[list-item]
    assert consumer.paused == [("events", 0), ("events", 0)], "at each record held"
    assert consumer.seeks == [("events", 0, 7), ("events", 0, 7)]
    assert thread.tasks.tasks["0_0"].consumed == {}, "nothing processed"
    for p in (0, 1):
        thread.tasks.task_running(thread.tasks.tasks[f"0_{p}"])
    assert consumer.resumed == [("events", 0)]
    assert not thread.tasks.holds.held
    # A resume that librdkafka's own pause for a rebalance overtook is dropped: resumed again
    # when the assignment is revoked, while librdkafka waits for the callback.
    thread._on_revoke(consumer, [])  # type: ignore[arg-type]
    assert consumer.resumed == [("events", 0), ("events", 0)]


def test_held_partitions_are_resumed_when_the_assignment_is_revoked() -> None:
    """librdkafka keeps a partition paused across assign() until it is resumed: a held one is
    resumed while still assigned, or it would hand nothing over when assigned again."""
    consumer = GroupConsumer()
    thread, _ = manager(consumer)
    thread.tasks.create([("events", 0)])
    thread.process([Message("events", 0, 3)])  # type: ignore[list-item]
    thread._on_revoke(consumer, [TopicPartition("events", 0)])  # type: ignore[arg-type]
    assert consumer.resumed == [("events", 0)]
    assert thread.tasks.tasks == {}


class RebalancingConsumer(GroupConsumer):
    """Its seeks fail as librdkafka's do when a rebalance's pause of the assignment overtook
    them (``error``) or when the partition is not assigned."""

    def __init__(self, error: int) -> None:
        super().__init__()
        self.error = error

    def seek(self, tp: TopicPartition) -> None:
        raise KafkaException(KafkaError(self.error, "Failed to seek to offset 7"))


def test_a_seek_back_overtaken_by_a_rebalance_is_not_an_error() -> None:
    """The eager protocol revokes every partition after that pause: the task does not run, so
    nothing of the partition is committed, and its next owner starts from the committed
    offset. Any other failed seek still fails."""
    consumer = RebalancingConsumer(KafkaError._OUTDATED)
    thread, _ = manager(consumer)
    thread.tasks.create([("events", 0)])
    thread.process([Message("events", 0, 7)])  # type: ignore[list-item]
    assert consumer.paused == [("events", 0)]
    assert thread.tasks.holds.held == {("events", 0)}
    consumer = RebalancingConsumer(KafkaError._STATE)
    thread, _ = manager(consumer)
    thread.tasks.create([("events", 0)])
    with pytest.raises(KafkaException, match="Failed to seek"):
        thread.process([Message("events", 0, 7)])  # type: ignore[list-item]

"""Starting the tasks again (after a delivery timeout, a freeze or an aborted transaction) no
longer waits for the committed offsets inside the restart. That wait, during a broker outage,
did not poll the consumer: librdkafka's lost-partitions event stayed unserved, its group waited
for the app, and ``committed()`` timed out for 3 minutes after the broker was back, the instance
REBALANCING throughout (chaos seed 934116). Now the restart closes and wipes the tasks at once,
and the loop reads the committed offsets at each pass (serving the consumer's events between
them); a rebalance meanwhile cancels the restart, as its assignment starts the tasks afresh.

And a process frozen past its session timeout may learn only from the seek back to the committed
offsets that a partition is no longer its own (librdkafka: "Erroneous state"). That seek used to
end the app in ERROR (chaos seed 890515); now the task of such a partition is not started again
and the others are."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamtable.runtime._thread import StreamThread
from tests.streamtable.runtime.test_redelivery import Message
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


class OutageConsumer:
    """``committed()`` fails as during a broker outage until ``back`` is set."""

    def __init__(self) -> None:
        self.back = False
        self.committed_calls = 0
        self.seeks: list[tuple[str, int, int]] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def assign(self, partitions: list[TopicPartition]) -> None:
        pass

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        self.committed_calls += 1
        if not self.back:
            raise KafkaException(
                KafkaError(KafkaError._TIMED_OUT, "Failed to get committed offsets", retriable=True)
            )
        return [TopicPartition(tp.topic, tp.partition, 40) for tp in partitions]

    def seek(self, tp: TopicPartition) -> None:
        self.seeks.append((tp.topic, tp.partition, tp.offset))


class LosingConsumer(OutageConsumer):
    """Still owns partition 1 of each topic; partition 0 was taken from it."""

    def seek(self, tp: TopicPartition) -> None:
        if tp.partition == 0:
            raise KafkaException(
                KafkaError(KafkaError._STATE, "Failed to seek to offset 40: Local: Erroneous state")
            )
        super().seek(tp)


def restarting_thread(
    consumer: OutageConsumer | None = None, **config: Any
) -> tuple[StreamThread, OutageConsumer, list[Any]]:
    """A thread with two running tasks of ``events`` (partitions 0 and 1); the list gets each
    assignment the task manager creates tasks for."""
    consumer = consumer or OutageConsumer()
    thread = offline_thread("deferred", consumer=consumer, **config)
    manager = thread.tasks
    for p in (0, 1):
        manager.tasks[f"0_{p}"] = SimpleNamespace(  # type: ignore[assignment]
            task_id=f"0_{p}",
            partition=p,
            topics=["events"],
            core=SimpleNamespace(discard_caches=lambda: None),
        )
    created: list[Any] = []
    manager.close = lambda tasks, **_: manager.tasks.clear()  # type: ignore[method-assign]
    manager.create = created.append  # type: ignore[method-assign,assignment]
    return thread, consumer, created


def test_the_restart_does_not_wait_for_the_broker() -> None:
    thread, consumer, created = restarting_thread()
    manager = thread.tasks
    manager.restart_all()  # waited in committed() until the deadline before
    assert consumer.committed_calls == 0
    assert manager.restart_pending == [("events", 0), ("events", 1)]
    manager.resume_restart()  # the broker still away: asked again at the next pass
    assert created == []
    assert manager.restart_pending is not None
    consumer.back = True
    manager.resume_restart()
    assert consumer.seeks == [("events", 0, 40), ("events", 1, 40)]
    assert created == [[("events", 0), ("events", 1)]]
    assert manager.restart_pending is None


def test_a_rebalance_meanwhile_cancels_the_restart() -> None:
    thread, consumer, _ = restarting_thread()
    thread.tasks.restart_all()
    thread._on_assign(consumer, [TopicPartition("events", 1)])  # type: ignore[arg-type]
    assert thread.tasks.restart_pending is None
    assert thread.new_assignment == [("events", 1)]


def test_a_restart_gives_up_after_the_task_timeout() -> None:
    thread, _, _ = restarting_thread(task_timeout_ms=0)
    thread.tasks.restart_all()
    with pytest.raises(KafkaException):
        thread.tasks.resume_restart()


def test_a_partition_lost_meanwhile_is_left_out_of_the_restart() -> None:
    consumer = LosingConsumer()
    consumer.back = True
    thread, _, created = restarting_thread(consumer)
    thread.tasks.restart_all()
    thread.tasks.resume_restart()  # raised KafkaException(_STATE) before
    assert consumer.seeks == [("events", 1, 40)]
    assert created == [[("events", 1)]]


class HoldingConsumer(OutageConsumer):
    def __init__(self) -> None:
        super().__init__()
        self.back = True
        self.paused: list[tuple[str, int]] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused += [(tp.topic, tp.partition) for tp in partitions]


def test_the_seek_to_the_committed_offsets_follows_the_batch_fetched_before_it() -> None:
    """A batch fetched before the restart's seek holds records past the committed offsets
    (those of the aborted transaction and after): its records find no running task and are
    held, each partition sought back to its first one. That must come before the seek to the
    committed offsets, or the partitions resume past records the restart must process again
    (chaos seed 297079, exactly_once_v2: every count short by the records of the aborted
    transaction)."""
    consumer = HoldingConsumer()
    thread, _, created = restarting_thread(consumer)
    thread.tasks.restart_all()
    thread.handle([Message("events", 0, 55), Message("events", 0, 56), Message("events", 1, 61)])  # type: ignore[list-item]
    assert consumer.seeks == [
        ("events", 0, 55),
        ("events", 1, 61),  # held
        ("events", 0, 40),
        ("events", 1, 40),  # the restart, last
    ]
    assert created == [[("events", 0), ("events", 1)]]

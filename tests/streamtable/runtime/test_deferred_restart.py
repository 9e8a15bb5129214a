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

from tests.support.offline import offline_app

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


def restarting_app(
    consumer: OutageConsumer | None = None, **config: Any
) -> tuple[Any, OutageConsumer, list[Any]]:
    app = offline_app("deferred")
    if config:
        app.config = app.config.model_copy(update=config)
    consumer = consumer or OutageConsumer()
    app._consumer = consumer  # type: ignore[assignment]
    for p in (0, 1):
        app._tasks[f"0_{p}"] = SimpleNamespace(  # type: ignore[assignment]
            task_id=f"0_{p}",
            partition=p,
            topics=["events"],
            core=SimpleNamespace(discard_caches=lambda: None),
        )
    created: list[Any] = []
    app._close_tasks = lambda tasks, **_: app._tasks.clear()  # type: ignore[method-assign]
    app._create_tasks = created.append  # type: ignore[method-assign,assignment]
    return app, consumer, created


def test_the_restart_does_not_wait_for_the_broker() -> None:
    app, consumer, created = restarting_app()
    app._restart_tasks()  # waited in committed() until the deadline before
    assert consumer.committed_calls == 0
    assert app._restart_pending == [("events", 0), ("events", 1)]
    app._resume_restart()  # the broker still away: asked again at the next pass
    assert created == []
    assert app._restart_pending is not None
    consumer.back = True
    app._resume_restart()
    assert consumer.seeks == [("events", 0, 40), ("events", 1, 40)]
    assert created == [[("events", 0), ("events", 1)]]
    assert app._restart_pending is None


def test_a_rebalance_meanwhile_cancels_the_restart() -> None:
    app, consumer, _ = restarting_app()
    app._restart_tasks()
    app._on_assign(consumer, [TopicPartition("events", 1)])
    assert app._restart_pending is None
    assert app._new_assignment == [("events", 1)]


def test_a_restart_gives_up_after_the_task_timeout() -> None:
    app, _, _ = restarting_app(task_timeout_ms=0)
    app._restart_tasks()
    with pytest.raises(KafkaException):
        app._resume_restart()


def test_a_partition_lost_meanwhile_is_left_out_of_the_restart() -> None:
    consumer = LosingConsumer()
    consumer.back = True
    app, _, created = restarting_app(consumer)
    app._restart_tasks()
    app._resume_restart()  # raised KafkaException(_STATE) before
    assert consumer.seeks == [("events", 1, 40)]
    assert created == [[("events", 1)]]

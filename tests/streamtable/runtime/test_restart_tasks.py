"""Starting the tasks again after a freeze (at_least_once): a process frozen past its session
timeout may learn only from the seek back to the committed offsets that a partition is no longer
its own (librdkafka: "Erroneous state"). That seek used to end the app in ERROR (chaos seed
890515); now the task of such a partition is not started again and the others are."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from tests.support.offline import offline_app

pytestmark = pytest.mark.unit


class LosingConsumer:
    """Still owns partition 1 of each topic; partition 0 was taken from it."""

    def __init__(self) -> None:
        self.seeks: list[tuple[str, int, int]] = []

    def pause(self, partitions: list[TopicPartition]) -> None:
        pass

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 40) for tp in partitions]

    def seek(self, tp: TopicPartition) -> None:
        if tp.partition == 0:
            raise KafkaException(
                KafkaError(KafkaError._STATE, "Failed to seek to offset 40: Local: Erroneous state")
            )
        self.seeks.append((tp.topic, tp.partition, tp.offset))


def test_a_partition_lost_meanwhile_is_left_out_of_the_restart(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = offline_app("restart")
    consumer = LosingConsumer()
    app._consumer = consumer  # type: ignore[assignment]
    for p in (0, 1):
        app._tasks[f"0_{p}"] = SimpleNamespace(  # type: ignore[assignment]
            task_id=f"0_{p}",
            partition=p,
            topics=["events"],
            core=SimpleNamespace(discard_caches=lambda: None),
        )
    created: list[Any] = []
    monkeypatch.setattr(app, "_close_tasks", lambda tasks, **_: app._tasks.clear())
    monkeypatch.setattr(app, "_create_tasks", created.append)
    app._restart_tasks()  # raised KafkaException(_STATE) before
    assert consumer.seeks == [("events", 1, 40)]
    assert created == [[("events", 1)]]

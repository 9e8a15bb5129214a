"""The lag gauges, updated after a commit, read the consumer's cached watermarks: right after a
broker restart librdkafka may know nothing of a partition yet and raise ``_UNKNOWN_PARTITION``.
That used to fail the commit that called them: under at_least_once the app stopped in ERROR,
under exactly_once_v2 it rebuilt every task's state (chaos seed 177202)."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamtable.runtime import _commits
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


class ForgetfulConsumer:
    """Knows the watermarks of partition 1 only."""

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        if tp.partition != 1:
            raise KafkaException(KafkaError(KafkaError._UNKNOWN_PARTITION))
        return 0, 50

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 20) for tp in tps]


def test_a_partition_without_cached_watermarks_is_left_out_of_the_lag() -> None:
    thread = offline_thread("gauges", consumer=ForgetfulConsumer())
    tasks: list[Any] = [
        SimpleNamespace(topics=["events"], partition=p, serde_stores={}) for p in (0, 1)
    ]
    thread.commits.update_gauges(tasks)  # raised KafkaException before
    lag = {
        sample.labels["partition"]: sample.value
        for metric in thread.ctx.metrics.registry.collect()
        if metric.name == "streamtable_consumer_lag"
        for sample in metric.samples
    }
    assert lag == {"1": 30.0}


class StuckConsumer:
    """Partition 0 stands at 20 of 50 (records wait on it); partition 1 is at its end."""

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool = False) -> tuple[int, int]:
        return 0, 50 if tp.partition == 0 else 20

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 20) for tp in tps]


def test_a_running_input_that_records_wait_on_but_that_does_not_move_is_named(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chaos seed 888458: a consumer handed nothing of one input partition over for minutes,
    and nothing said so."""
    clock = [1000.0]
    monkeypatch.setattr(_commits, "monotonic", lambda: clock[0])
    thread = offline_thread("stuck", consumer=StuckConsumer())
    tasks: list[Any] = [
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
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.app"):
        for _ in range(8):  # every 5 s: 35 s
            thread.commits.update_gauges(tasks)
            clock[0] += 5.0
    warned = [r.getMessage() for r in caplog.records if "has not moved" in r.getMessage()]
    assert warned == [
        "input events[0] of running task 0_0 has not moved for 30s: at offset 20, 30 record(s) "
        "before its end (consumer position 20, committed 20)"
    ]

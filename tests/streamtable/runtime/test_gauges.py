"""The lag gauges, updated after a commit, read the consumer's cached watermarks: right after a
broker restart librdkafka may know nothing of a partition yet and raise ``_UNKNOWN_PARTITION``.
That used to fail the commit that called them: under at_least_once the app stopped in ERROR,
under exactly_once_v2 it rebuilt every task's state (chaos seed 177202)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

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

"""A partition's own error in a committed-offsets answer is an error, not "nothing committed"
(librdkafka reports it with offset -1001, which a restart would read as: start over)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition

from streamtable.runtime import _clients

pytestmark = pytest.mark.unit


class Answer:
    def __init__(self, errors: dict[int, KafkaError]) -> None:
        self.errors = errors

    def committed(self, tps: list[TopicPartition], timeout: float) -> list[SimpleNamespace]:
        """As librdkafka answers: a partition with an error has it, and offset -1001."""
        return [
            SimpleNamespace(topic=tp.topic, partition=tp.partition, error=self.errors.get(
                tp.partition), offset=-1001 if tp.partition in self.errors else 10 * tp.partition)
            for tp in tps
        ]  # fmt: skip


def ask(errors: dict[int, KafkaError]) -> Any:
    consumer: Any = Answer(errors)
    return _clients.committed_offsets(consumer, [TopicPartition("t", p) for p in range(3)], 1)


def test_offsets_without_errors_are_returned() -> None:
    assert [tp.offset for tp in ask({})] == [0, 10, 20]


def test_a_partition_error_is_raised_and_is_transient_when_retriable() -> None:
    error = KafkaError(KafkaError.COORDINATOR_LOAD_IN_PROGRESS, "loading", retriable=True)
    with pytest.raises(KafkaException) as caught:
        ask({1: error})
    assert caught.value.args[0].code() == KafkaError.COORDINATOR_LOAD_IN_PROGRESS
    assert _clients.transient(caught.value)

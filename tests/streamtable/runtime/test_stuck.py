"""Telling a stuck consumer from one with nothing to read: it is stuck when it has not fetched
up to the broker's last stable offset, or cannot ask for it."""

from __future__ import annotations

from typing import cast

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streamtable.runtime import _stuck
from streamtable.runtime._stuck import stable_offsets

pytestmark = pytest.mark.unit

TP = ("changelog", 0)


class Asked:
    def __init__(self, low: int, stable: int, fetched: int, error: bool = False) -> None:
        self.low, self.stable, self.fetched, self.error = low, stable, fetched, error

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        assert not cached, "a stuck consumer's cached offsets say nothing"
        if self.error:
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get offsets"))
        return self.low, self.stable

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.fetched) for tp in partitions]


@pytest.mark.parametrize(
    ("low", "stable", "fetched", "expected", "stuck"),
    [
        (0, 186, OFFSET_INVALID, OFFSET_BEGINNING, True),  # nothing fetched of 186 records
        (0, 186, 120, 120, True),  # part-way, then nothing
        (0, 186, 186, 186, False),  # all read: waits for writes
        (0, 2, 2, 1, False),  # past a commit marker, at an open transaction: waits
        (5, 5, OFFSET_INVALID, OFFSET_BEGINNING, False),  # all deleted: nothing to hand over
        (0, 40, OFFSET_INVALID, 40, False),  # assigned at the end: nothing handed over yet
    ],
)
def test_a_consumer_is_stuck_only_when_the_broker_holds_records_it_has_not_fetched(
    low: int, stable: int, fetched: int, expected: int, stuck: bool
) -> None:
    consumer = cast(Consumer, Asked(low, stable, fetched))
    assert stable_offsets(consumer, {TP: expected}) == (stuck, {TP: str(stable)})


def test_a_consumer_that_cannot_ask_is_stuck_and_says_why() -> None:
    consumer = cast(Consumer, Asked(0, 0, 0, error=True))
    stuck, found = stable_offsets(consumer, {TP: 3, ("changelog", 1): 4})
    assert stuck
    assert list(found) == [TP], "asking stops at the first failure"
    assert found[TP].startswith("not readable: KafkaError{code=_TIMED_OUT")


@pytest.mark.parametrize("cut_off", [True, False])
def test_one_that_cannot_ask_is_stuck_only_when_a_new_client_reaches_the_cluster(
    monkeypatch: pytest.MonkeyPatch, cut_off: bool
) -> None:
    """While the broker is down for everyone, a new consumer would not help (chaos seed
    717134: a global-table consumer replaced 5 s before the restarted broker was back)."""
    monkeypatch.setattr(_stuck, "cut_off", lambda client, settings: cut_off)
    consumer = cast(Consumer, Asked(0, 0, 0, error=True))
    assert stable_offsets(consumer, {TP: 3}, {"bootstrap.servers": "b:9092"})[0] is cut_off

"""A restore that has not moved for a while is named in a warning, with the last stable offset
of each stalled partition, or why the restore consumer could not read it: after a broker restart
a restore sat at "0/5723 records" for 3 minutes and its consumer's own offset queries failed
too (chaos seeds 341488, 714731). The error says which way it failed. A consumer that has not
fetched up to the last stable offset (or cannot ask for it) is stuck and is replaced."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, cast

import pytest
from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    TopicPartition,
)

from streamtable.runtime import _changelog, _restore
from streamtable.runtime._changelog import ChangelogPartition
from streamtable.runtime._restore import ChangelogRestorer

pytestmark = pytest.mark.unit


def stalled(restorer: ChangelogRestorer, position: int) -> None:
    """A partition of the restore that has handed nothing over for 5 s, at ``position`` of
    186."""
    unused: Any = None
    tp = ("app-store-changelog", 0)
    restorer.reader.parts[tp] = ChangelogPartition(
        tp, unused, position, 186, moved=time.monotonic() - 5.0
    )


class Unreachable:
    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "Failed to get watermark offsets"))


def test_a_stalled_restore_says_why_its_consumer_cannot_read_the_offsets(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    restorer = ChangelogRestorer(cast(Consumer, Unreachable()))
    stalled(restorer, OFFSET_BEGINNING)
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.changelog"):
        restorer.reader.watch()
    (message,) = [r.getMessage() for r in caplog.records]
    assert message.startswith(
        "restore has not moved on 1 changelog partition(s): app-store-changelog[0] at beginning "
        "of 186 (last stable offset: not readable: KafkaError{code=_TIMED_OUT"
    )
    assert message.endswith("5s without a record)")


class Stuck:
    """A restore consumer that hands nothing over although the broker holds records for it:
    its fetch position stays where the assignment put it."""

    def __init__(self, fetched: int, stable: int = 186) -> None:
        self.fetched = fetched
        self.stable = stable
        self.assigned: list[TopicPartition] = []
        self.closed = threading.Event()

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions

    def consume(self, num_messages: int, timeout: float) -> list[Any]:
        return []

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        return 0, self.stable

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.fetched) for tp in partitions]

    def close(self) -> None:
        self.closed.set()


def test_a_restore_consumer_that_stopped_fetching_is_replaced_at_the_same_positions(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its offset query never answered: fetch position unset, the broker holds 186 records."""
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    stuck = Stuck(fetched=OFFSET_INVALID)
    fresh: list[Stuck] = []

    def renew() -> Consumer:
        fresh.append(Stuck(fetched=OFFSET_INVALID))
        return cast(Consumer, fresh[-1])

    restorer = ChangelogRestorer(cast(Consumer, stuck), renew=renew)
    stalled(restorer, OFFSET_BEGINNING)
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.changelog"):
        restorer.step()
    assert len(fresh) == 1
    assert restorer.replacements == 1
    assert [(t.topic, t.partition, t.offset) for t in fresh[0].assigned] == [
        ("app-store-changelog", 0, OFFSET_BEGINNING)
    ]
    assert stuck.closed.wait(10), "the stuck consumer was not closed"
    assert "replacing the restore consumer" in caplog.records[-1].getMessage()
    # Its successor is given the same interval before it is judged.
    restorer.step()
    assert len(fresh) == 1


def test_a_consumer_part_way_through_is_replaced_from_where_the_restore_stands(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    fresh: list[Stuck] = []

    def renew() -> Consumer:
        fresh.append(Stuck(fetched=OFFSET_INVALID))
        return cast(Consumer, fresh[-1])

    restorer = ChangelogRestorer(cast(Consumer, Stuck(fetched=120)), renew=renew)
    stalled(restorer, 120)
    restorer.step()
    assert [(t.topic, t.partition, t.offset) for t in fresh[0].assigned] == [
        ("app-store-changelog", 0, 120)
    ]


def test_a_consumer_waiting_at_the_last_stable_offset_is_kept(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An open transaction holds the last stable offset back: the consumer has fetched up to
    it (past a commit marker the restore never sees) and waits; a new one would wait too."""
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    renewed: list[int] = []

    def renew() -> Consumer:
        renewed.append(1)
        raise AssertionError("a waiting consumer was replaced")

    waiting = Stuck(fetched=2, stable=2)
    restorer = ChangelogRestorer(cast(Consumer, waiting), renew=renew)
    stalled(restorer, 1)
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.changelog"):
        restorer.step()
    assert not renewed
    assert restorer.replacements == 0
    (message,) = [r.getMessage() for r in caplog.records]
    assert "app-store-changelog[0] at 1 of 186 (last stable offset: 2, 5s" in message


def test_a_restorer_that_cannot_renew_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_changelog, "STALL_S", 1.0)
    stuck = Stuck(fetched=OFFSET_INVALID)
    restorer = ChangelogRestorer(cast(Consumer, stuck))
    stalled(restorer, OFFSET_BEGINNING)
    restorer.step()
    assert restorer.replacements == 0
    assert not stuck.closed.is_set()


class CutOff(Stuck):
    """A log end consumer that has lost every broker: every offsets request fails."""

    def get_watermark_offsets(
        self, tp: TopicPartition, timeout: float, cached: bool
    ) -> tuple[int, int]:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "no usable brokers"))


class Task:
    task_id = "0_0"
    source_changelogs: frozenset[tuple[str, int]] = frozenset()
    specs: dict[str, Any] = {"store": None}  # noqa: RUF012

    def __init__(self) -> None:
        self.store = type("Store", (), {"name": "store"})()
        self.changelogs = {("app-store-changelog", 0): self.store}
        self.restored_to: dict[tuple[str, int], int] = {}

    def restore_start(self, tp: tuple[str, int]) -> int | None:
        return None


def test_a_log_end_consumer_cut_off_from_its_brokers_is_replaced_and_asked_again(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_restore, "cut_off", lambda client, settings: True)
    cut = CutOff(fetched=OFFSET_INVALID)
    fresh = Stuck(fetched=OFFSET_INVALID, stable=186)
    restorer = ChangelogRestorer(
        cast(Consumer, Stuck(fetched=OFFSET_INVALID)),
        log_end=cast(Consumer, cut),
        renew_log_end=lambda: cast(Consumer, fresh),
        settings={"bootstrap.servers": "b:9092"},
    )
    task: Any = Task()
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.restore"):
        restorer.add(task, {})
    assert task.restored_to == {("app-store-changelog", 0): 186}, "the new one answered"
    assert cut.closed.wait(10), "the cut-off consumer was not closed"
    assert "replacing the log end consumer" in caplog.text

"""A record the consumer hands over again, after its task has processed it, is skipped.

librdkafka can move a partition's fetch position back on its own: chaos seed 695530 (a
``count`` under exactly_once_v2, two instances starting together) saw 1_0 process offsets
711..775 of its repartition partition twice within half a second, without any rebalance or
seek by the app; the rewind landed on the log start offset the app had just purged to. Each
record counted twice, and the changelog committed with the input offsets carried the extra
counts (63 of them) to every later owner. A task processes each offset of its partitions at
most once; what comes again is dropped, logged and counted."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest

from streamtable.runtime.state import TaskState
from tests.support.offline import offline_thread

pytestmark = pytest.mark.unit


class Message:
    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._topic, self._partition, self._offset = topic, partition, offset

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def error(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000 + self._offset)

    def key(self) -> bytes:
        return b"k"

    def value(self) -> bytes:
        return b"%d" % self._offset

    def headers(self) -> None:
        return None


def running_task(processed: list[tuple[str, int]]) -> Any:
    def process(topic: str, key: Any, value: Any, ts: int, offset: int, headers: Any) -> None:
        processed.append((topic, offset))

    return SimpleNamespace(
        task_id="0_0",
        partition=0,
        state=TaskState.RUNNING,
        consumed={},
        replay_until={},
        core=SimpleNamespace(process=process),
    )


def test_records_handed_over_again_are_not_processed_twice(
    caplog: pytest.LogCaptureFixture,
) -> None:
    thread = offline_thread("redelivery")
    processed: list[tuple[str, int]] = []
    task = running_task(processed)
    thread.tasks.by_partition[("events", 0)] = task

    thread.process([Message("events", 0, o) for o in (10, 11, 12, 13)])  # type: ignore[misc]
    # The fetch position moved back to 11: 11..13 come again, then the partition goes on.
    with caplog.at_level(logging.WARNING, logger="streamtable.runtime.app"):
        thread.process([Message("events", 0, o) for o in (11, 12, 13, 14, 15)])  # type: ignore[misc]

    assert [o for _, o in processed] == [10, 11, 12, 13, 14, 15]
    assert task.consumed == {"events": 16}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "consumer handed over 3 record(s) of events[0] again (offsets 11..13), which its task "
        "had processed: skipped"
    ]


def test_a_gap_after_a_transaction_marker_is_not_a_redelivery() -> None:
    """Offsets skipped by read_committed (markers, aborted records) are no redelivery, and a
    task started afresh (new ``consumed``) processes from wherever its consumer starts."""
    thread = offline_thread("redelivery-gap")
    processed: list[tuple[str, int]] = []
    thread.tasks.by_partition[("events", 0)] = running_task(processed)
    thread.process([Message("events", 0, o) for o in (3, 4, 7, 9)])  # type: ignore[misc]
    thread.tasks.by_partition[("events", 0)] = running_task(processed)  # restarted from 4
    thread.process([Message("events", 0, o) for o in (4, 7)])  # type: ignore[misc]
    assert [o for _, o in processed] == [3, 4, 7, 9, 4, 7]

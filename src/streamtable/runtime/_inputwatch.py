"""Telling an input partition of a running task that the group consumer no longer fetches from
one that has nothing to read, and repairing it.

:mod:`._holds` keeps the known cause away; this is the guard behind it. A table fed by a
partition that is never fetched again is wrong for good, and nothing else would say so: the
consumer reports no error, and a cached end offset does not move either, as only fetches update
it (chaos seed 888458: one input partition handed nothing over for 3 minutes, unnoticed).

At each gauges pass (every few seconds) the position of every running input partition is noted.
One that has not moved for :data:`STUCK_INPUT_S` is looked at (a few per pass, the longest
unlooked first, each at most once per :data:`STUCK_INPUT_S`): its end offset is asked of the
broker (under ``read_committed``, the last stable offset). A fetching consumer's position goes
past every record before that end, transaction markers and aborted records included (librdkafka
moves it past the markers it does not hand over), so records waiting there mean it does not
fetch. The first time, the partition is resumed and sought to where it stands, which a fetching
partition does not notice, and named in a warning. Where it stands is the consumer's position,
else the task's next offset, else the offset the group has committed, read then: never a guess.
(A partition without a position whose task knew of no offset used to be sought to its start;
under exactly-once that processed again what committed transactions had already written: chaos
seed 225904, a dead-letter record there twice. Its consumer had no position because an open
transaction held the committed offsets back, which the broker ends in time.)
If the seek fails (librdkafka: its fetcher is not running), or at the next look it still stands
there with records waiting, the group consumer is to be replaced (:attr:`InputWatch.stuck` says
why).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from streamtable.runtime._task import StreamTask

log = logging.getLogger("streamtable.runtime.app")

TP = tuple[str, int]

STUCK_INPUT_S = 30.0
"""How long a running task's input partition may stand still before it is looked at."""
CHECKED_PER_LOOK = 4
"""At most this many partitions are looked at per pass (one short broker call each)."""


@dataclass
class _Seen:
    at: int  # next offset: the consumer's position, else the task's next (-1: unknown)
    since: float  # when it was first seen there
    looked: float  # when it was last looked at (or first seen)
    repaired: bool = False  # resumed and sought to ``at`` once


class InputWatch:
    """The input partitions of the running tasks of one group consumer."""

    def __init__(self) -> None:
        self._seen: dict[TP, _Seen] = {}
        self.stuck: str | None = None  # why the group consumer is to be replaced

    def watch(
        self, consumer: Consumer, inputs: list[tuple[StreamTask, str, int]], now: float
    ) -> None:
        """``inputs``: each running task's input topic with the consumer's position in it
        (below zero: none yet)."""
        seen: dict[TP, _Seen] = {}
        due: list[tuple[StreamTask, str, int, _Seen]] = []
        for task, topic, position in inputs:
            at = position if position >= 0 else task.consumed.get(topic, -1)
            if at < 0:
                at = task.committed.get(topic, -1)
            entry = self._seen.get((topic, task.partition))
            if entry is None or entry.at != at:
                entry = _Seen(at, now, now)
            seen[(topic, task.partition)] = entry
            if now - entry.since >= STUCK_INPUT_S and now - entry.looked >= STUCK_INPUT_S:
                due.append((task, topic, position, entry))
        self._seen = seen
        due.sort(key=lambda d: d[3].looked)
        for task, topic, position, entry in due[:CHECKED_PER_LOOK]:
            if not self._look(consumer, task, topic, position, entry, now):
                break  # the broker does not answer: no verdict this pass

    def forget(self) -> None:
        """A new group consumer: nothing seen of it yet."""
        self._seen.clear()
        self.stuck = None

    @staticmethod
    def _committed(consumer: Consumer, tp: TopicPartition) -> int | None:
        """The group's committed offset of ``tp`` (below zero: none), or None while it cannot
        be read: under ``read_committed`` the broker holds it back while a transaction that
        sent offsets for it is open, which is also why the consumer has no position yet."""
        try:
            found = consumer.committed([tp], timeout=1.0)
        except KafkaException as exc:
            log.debug("committed offset of %s[%d] not readable: %s", tp.topic, tp.partition, exc)
            return None
        if not found or found[0].error is not None:
            return None
        offset: int = found[0].offset
        return offset

    def _look(
        self,
        consumer: Consumer,
        task: StreamTask,
        topic: str,
        position: int,
        entry: _Seen,
        now: float,
    ) -> bool:
        tp = TopicPartition(topic, task.partition)
        try:
            low, end = consumer.get_watermark_offsets(tp, timeout=1.0, cached=False)
        except KafkaException as exc:
            log.debug("end offset of %s[%d] not readable: %s", topic, task.partition, exc)
            return False
        at = entry.at
        if at < 0:
            known = self._committed(consumer, tp)
            if known is None:
                return False  # an open transaction holds it, or no answer: no verdict
            at = known  # below zero (nothing committed): where the reset starts, ``low``
        entry.looked = now
        at = max(at, low)
        if end <= at:
            return True  # nothing waits on it
        where = (
            f"input {topic}[{task.partition}] of running task {task.task_id} has not moved for "
            f"{now - entry.since:.0f}s: at offset {at}, {end - at} record(s) before its end "
            f"(consumer position {position}, committed {task.committed.get(topic, 'none')})"
        )
        if entry.repaired:
            self.stuck = f"{where}, after it was resumed and sought there"
            return True
        try:
            consumer.resume([tp])
            consumer.seek(TopicPartition(topic, task.partition, at))
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if isinstance(error, KafkaError) and error.code() == KafkaError._OUTDATED:
                return True  # overtaken by a rebalance under way (see _holds): no verdict
            self.stuck = f"{where}; its fetcher does not run ({exc})"
            return True
        entry.repaired = True
        log.warning("%s: resumed and fetched again from %d", where, at)
        return True

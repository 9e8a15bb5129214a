"""The group consumer's input partitions held back while their tasks do not run.

A record of a task that is not running (restoring, or closed for a restart) is not processed:
its partition is paused and sought back to it, and resumed once the task runs. Partitions are
paused only once they have handed a record over, never in the assignment callback, and every
partition paused during an assignment is resumed again before it leaves the assignment. Two
properties of librdkafka (2.16) make that the only safe order:

- Every ``pause()``, ``resume()`` and ``seek()`` of a partition is an op that carries a version
  barrier, taken on the calling thread before the op is queued; an op whose barrier is older
  than one already served is dropped as outdated. After ``assign()``, librdkafka's main thread
  starts a partition's fetcher with such an op (once the group coordinator has returned the
  committed offset) and resumes its own pause of the assignment with another. An application
  op on the same partition at that moment can overtake them: the fetcher's start is dropped
  and the partition is never fetched, or the application's resume is dropped and it stays
  paused; either way it hands nothing over for good, with nothing logged. A standalone
  reproduction (assign, pause at once, resume 0-20 ms later, 64 partitions, librdkafka's debug
  log on) showed both: 31 silent partitions in 41,408 partition assignments, each one after a
  "received outdated op FETCH_START" or an outdated PAUSE op (resume); chaos seed 888458 had one
  input partition of a running task hand nothing over for 3 minutes after a rebalance. A
  partition that has handed a record over has a running fetcher, so the application's ops on
  it no longer meet those. librdkafka still pauses the whole assignment on its main thread when
  a rebalance starts; an application resume overtaken by that pause is dropped, so
  :meth:`PartitionHolds.release_all` resumes every partition paused during the assignment again
  in the revocation callback, when librdkafka waits for the application.
- A partition paused by the application stays paused across ``assign()`` and ``unassign()``
  until the application resumes it (tests/integration/test_paused_partitions.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

log = logging.getLogger("streamtable.runtime.app")

TP = tuple[str, int]


class PartitionHolds:
    """The partitions the processing thread has paused, of the group consumer of the moment:
    ``held`` until their task runs, ``released`` since (resumed, but resumed again when the
    assignment goes, see the module's docstring)."""

    def __init__(self, consumer: Callable[[], Consumer]) -> None:
        self._consumer = consumer
        self.held: set[TP] = set()
        self.released: set[TP] = set()

    def hold(self, topic: str, partition: int, offset: int) -> None:
        """``topic[partition]`` handed over the record at ``offset`` for a task that does not
        run: fetch it again from there once it is released. Paused at every record that finds
        its task not running (a pause dropped as outdated is made good), and paused before the
        seek (librdkafka issue 3471: in older versions a seek before a pause was lost).

        A seek dropped as outdated was overtaken by librdkafka's pause of the assignment for a
        rebalance, which revokes every partition (the eager protocol): the task of this one
        does not run, so nothing of it is committed, and its next owner starts from the
        committed offset."""
        tp = TopicPartition(topic, partition, offset)
        consumer = self._consumer()
        consumer.pause([tp])
        self.held.add((topic, partition))
        try:
            consumer.seek(tp)
        except KafkaException as exc:
            error = exc.args[0] if exc.args else None
            if not isinstance(error, KafkaError) or error.code() != KafkaError._OUTDATED:
                raise
            log.info(
                "%s[%d]: the seek back to %d was overtaken by a rebalance", topic, partition, offset
            )

    def release(self, tps: Iterable[TP]) -> None:
        """Resume those of ``tps`` held (their task runs); the others are fetched already."""
        held = [tp for tp in tps if tp in self.held]
        if held:
            self._consumer().resume([TopicPartition(t, p) for t, p in held])
            self.held.difference_update(held)
            self.released.update(held)

    def release_all(self) -> None:
        """The assignment is revoked or lost: resume every partition paused during it while it
        is still assigned, so that none is still paused when it is assigned again."""
        paused = self.held | self.released
        if paused:
            self._consumer().resume([TopicPartition(t, p) for t, p in sorted(paused)])
        self.forget()

    def forget(self) -> None:
        """A new group consumer (or an assignment gone): nothing paused of it."""
        self.held.clear()
        self.released.clear()

"""The group consumer's input partitions held back while their tasks do not run.

A record of a task that is not running (restoring, or closed for a restart) is not processed:
its partition is sought back to it and paused, and resumed once the task runs. Partitions are
paused only once they have handed a record over, never in the assignment callback, and a held
partition is resumed before it leaves the assignment. Two properties of librdkafka (2.16) make
that the only safe order:

- A partition's fetcher starts asynchronously after ``assign()``: once the group coordinator has
  returned its committed offset, librdkafka's main thread enqueues a start op that carries a
  version barrier taken when the op was made. ``pause()``, ``resume()`` and ``seek()`` take a
  barrier too, on the application's thread, and an op whose barrier is older than one already
  served is dropped as outdated. A ``pause()`` right after ``assign()`` can overtake the start
  that way: the start is dropped, the fetcher never runs, and the partition hands nothing over
  for good, with nothing logged (chaos seed 888458: one input partition of a running task
  handed nothing over for 3 minutes). A partition that has handed a record over has a running
  fetcher, so an op on it cannot overtake its start.
- A partition paused by the application stays paused across ``assign()`` and ``unassign()``
  until the application resumes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from confluent_kafka import Consumer, TopicPartition

TP = tuple[str, int]


class PartitionHolds:
    """The partitions the processing thread has paused, of the group consumer of the moment."""

    def __init__(self, consumer: Callable[[], Consumer]) -> None:
        self._consumer = consumer
        self.held: set[TP] = set()

    def hold(self, topic: str, partition: int, offset: int) -> None:
        """``topic[partition]`` handed over the record at ``offset`` for a task that does not
        run: fetch it again from there once it is released. Paused before the seek (librdkafka
        issue 3471: a seek before a pause was lost on resume in older versions)."""
        tp = TopicPartition(topic, partition, offset)
        consumer = self._consumer()
        if (topic, partition) not in self.held:
            consumer.pause([tp])
            self.held.add((topic, partition))
        consumer.seek(tp)

    def release(self, tps: Iterable[TP]) -> None:
        """Resume those of ``tps`` held (their task runs); the others are fetched already."""
        held = [tp for tp in tps if tp in self.held]
        if held:
            self._consumer().resume([TopicPartition(t, p) for t, p in held])
            self.held.difference_update(held)

    def release_all(self) -> None:
        """The assignment is revoked or lost: resume every held partition while it is still
        assigned, so that none is still paused when it is assigned again."""
        self.release(list(self.held))

    def forget(self) -> None:
        """A new group consumer: it has paused nothing."""
        self.held.clear()

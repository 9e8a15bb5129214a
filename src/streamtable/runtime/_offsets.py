"""How far the inputs have been read: a task's own, and the whole group's.

What a processor asks through ``context.input_offsets()`` and ``context.group_offsets(topic)``
(a barrier such as "every instance has processed the positions as they stood at 9:00").
"""

from __future__ import annotations

from confluent_kafka import TopicPartition

from streamtable.runtime._context import ThreadClients
from streamtable.runtime.topics import TopicPlan
from streamtable.topology import TaskCore


class InputOffsets:
    def __init__(self, clients: ThreadClients, plan: TopicPlan) -> None:
        self._clients = clients
        self._plan = plan

    def of_task(self, core: TaskCore) -> dict[str, tuple[int, int]]:
        """How far a task has read each input: (position, high watermark).

        The consumer's position, not the last processed offset: under ``read_committed`` the
        last offsets of a partition are transaction markers, which the position steps over
        (every record it passed has been processed: the loop processes each batch whole).
        """
        consumer = self._clients.consumer
        result: dict[str, tuple[int, int]] = {}
        for topic in core.topics:
            tp = TopicPartition(topic, core.partition)
            _, high = consumer.get_watermark_offsets(tp, timeout=10)
            position = consumer.position([tp])[0].offset
            if position < 0:  # nothing fetched yet since the assignment
                position = max(consumer.committed([tp], timeout=10)[0].offset, 0)
            result[topic] = (position, high)
        return result

    def of_group(self, topic: str) -> dict[int, tuple[int, int]]:
        """The group's committed offset and the high watermark of each partition of ``topic``
        (an input of some sub-topology): what every instance has processed and committed."""
        consumer = self._clients.consumer
        tps = [TopicPartition(topic, p) for p in range(self._plan.count(topic))]
        committed = consumer.committed(tps, timeout=10)
        return {
            tp.partition: (
                max(tp.offset, 0),
                consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)[1],
            )
            for tp in committed
        }

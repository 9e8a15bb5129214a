"""How far the inputs have been read: a task's own, and the whole group's.

What a processor asks through ``context.input_offsets()`` and ``context.group_offsets(topic)``
(a barrier such as "every instance has processed the positions as they stood at 9:00").

Nothing here waits on the broker on the processing thread (a punctuator asking each second
used to hold up processing, and with it every interactive query, for the length of several
broker round trips per task). A task's position is its consumer's own (local). End offsets and
the group's committed offsets come from :class:`OffsetsRefresher`, a thread with a consumer of
its own that reads them every :data:`REFRESH_S` for the topics asked about lately. Until it has
read a topic at least once since it was first asked about, the answer is None: ask again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from streamtable.runtime import _clients
from streamtable.runtime._stuck import close_in_background
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.topics import TopicPlan
from streamtable.topology import TaskCore

log = logging.getLogger("streamtable.runtime.offsets")

REFRESH_S = 0.5
"""How often the offsets of the topics asked about are read again."""
KEEP_S = 60.0
"""A topic not asked about for this long is no longer read (the next ask waits for a read)."""

PartitionOffsets = dict[int, tuple[int, int]]  # partition -> (committed offset, end offset)


class OffsetsRefresher:
    """Reads the group's committed offsets and the end offsets of the topics asked about, on a
    thread of its own (started at the first ask)."""

    def __init__(
        self, config: StreamsConfig, plan: TopicPlan, make: Callable[[], Consumer] | None = None
    ) -> None:
        self._config = config
        self._plan = plan
        self._make = make or (lambda: _clients.offsets_consumer(config))
        self._lock = threading.Lock()
        self._asked: dict[str, tuple[float, float]] = {}  # topic -> (first asked, last asked)
        self._read: dict[str, tuple[float, PartitionOffsets]] = {}  # topic -> (read at, offsets)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.replacements = 0

    def offsets(self, topic: str) -> PartitionOffsets | None:
        """The latest offsets of ``topic`` read since it was first asked about, or None."""
        now = time.monotonic()
        with self._lock:
            first, _ = self._asked.get(topic, (now, now))
            self._asked[topic] = (first, now)
            read = self._read.get(topic)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(
                    target=self._run, name="streamtable-offsets", daemon=True
                )
                self._thread.start()
        if read is None or read[0] < first:
            return None
        return read[1]

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)

    def _run(self) -> None:
        consumer = self._make()
        failing_since: float | None = None
        try:
            while not self._stop.wait(REFRESH_S):
                try:
                    self._refresh(consumer)
                    failing_since = None
                except KafkaException as exc:
                    now = time.monotonic()
                    failing_since = failing_since or now
                    log.info("offsets not readable (%s); trying again", exc)
                    if now - failing_since >= _clients.CUT_OFF_AFTER_S and _clients.cut_off(
                        consumer, self._config.client_config()
                    ):  # it has lost every broker: a new one (see _clients.cut_off)
                        close_in_background(consumer, "offsets")
                        consumer = self._make()
                        self.replacements += 1
                        failing_since = None
        finally:
            consumer.close()

    def _refresh(self, consumer: Consumer) -> None:
        now = time.monotonic()
        with self._lock:
            for topic, (_, last) in list(self._asked.items()):
                if now - last > KEEP_S:
                    del self._asked[topic]
                    self._read.pop(topic, None)
            topics = list(self._asked)
        for topic in topics:
            read_at = time.monotonic()  # before the reads: offsets at least this fresh
            tps = [TopicPartition(topic, p) for p in range(self._plan.count(topic))]
            committed = consumer.committed(tps, timeout=10)
            found = {
                tp.partition: (
                    max(tp.offset, 0),
                    consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), 10)[1],
                )
                for tp in committed
            }
            with self._lock:
                if topic in self._asked:
                    self._read[topic] = (read_at, found)


class InputOffsets:
    """The offsets hooks of the tasks (``TaskHooks.input_offsets``/``group_offsets``)."""

    def __init__(self, consumer: Callable[[], Consumer], refresher: OffsetsRefresher) -> None:
        self._consumer = consumer  # the group consumer of the moment (it may be replaced)
        self.refresher = refresher

    def of_task(self, core: TaskCore) -> dict[str, tuple[int, int]] | None:
        """How far a task has read each input: ``{topic: (position, end offset)}``, or None
        while the end offsets are not known yet.

        The consumer's position, not the last processed offset: under ``read_committed`` the
        last offsets of a partition are transaction markers, which the position steps over
        (every record it passed has been processed: the loop processes each batch whole).
        Before anything is fetched, the group's committed offset stands for the position.
        """
        tps = [TopicPartition(topic, core.partition) for topic in core.topics]
        read = {tp.topic: self.refresher.offsets(tp.topic) for tp in tps}
        result: dict[str, tuple[int, int]] = {}
        for tp in self._consumer().position(tps):  # local: no broker call
            offsets = read[tp.topic]
            if offsets is None or tp.partition not in offsets:
                return None
            committed, end = offsets[tp.partition]
            result[tp.topic] = (tp.offset if tp.offset >= 0 else committed, end)
        return result

    def of_group(self, topic: str) -> PartitionOffsets | None:
        """The group's committed offset and the end offset of each partition of ``topic`` (an
        input of some sub-topology): what every instance has processed and committed. None
        while not known yet."""
        return self.refresher.offsets(topic)

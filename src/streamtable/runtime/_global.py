"""Global tables: every partition of the topic, replicated in full into a store on every
instance. Restored from the beginning before any task processes; then kept current by
``poll()`` from the processing loop. Records that do not deserialize are skipped (logged).
A consumer that stops fetching while the broker holds records for it (seen after broker
restarts, ``_stuck.py``) is replaced by a new one at the offsets applied so far: a global table
that silently stopped following its topic would join every record with stale values."""

from __future__ import annotations

import logging
import shutil
import time
from functools import partial
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka import KafkaError as ClientError

from streamtable.errors import KafkaError, loggable
from streamtable.runtime._clients import METADATA_REFRESH_MS, retry_transient
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime._stuck import STALL_S, close_in_background, stable_offsets
from streamtable.runtime.config import StreamsConfig
from streamtable.state import SerdeStore, open_engine
from streamtable.topology import SourceSpec, Topology, build_store

log = logging.getLogger("streamtable.runtime.global")

TP = tuple[str, int]

# How many idle partitions one look at the consumer asks about (in turn, so that every
# partition is asked about over time): one short broker call each.
CHECKED_PER_LOOK = 10


class GlobalStores:
    def __init__(
        self, topology: Topology, config: StreamsConfig, state_dir: StateDirectory
    ) -> None:
        self.stores: dict[str, SerdeStore] = {}
        self._by_topic: dict[str, tuple[SourceSpec, SerdeStore]] = {}
        self._consumer: Consumer | None = None
        self._config = config
        self.restored_records = 0
        self._next: dict[TP, int] = {}  # next offset to apply (OFFSET_BEGINNING before any)
        self._moved: dict[TP, float] = {}  # time.monotonic() of the last record handed over
        self._looked = 0.0
        self._turn = 0
        self.replacements = 0
        root = state_dir.app_dir / "global"
        shutil.rmtree(root, ignore_errors=True)  # rebuilt in full at every start
        for glob in topology.global_tables:
            spec = topology.stores[glob.store]
            kind = config.store_kind if spec.kind == "default" else spec.kind
            engine = open_engine(kind == "rocksdb", root / glob.store)
            store = build_store(spec, engine, config.application_id, 0, None, None)[0]
            self.stores[glob.store] = store
            self._by_topic[glob.source.topic] = (glob.source, store)

    def restore(self, timeout_s: float = 300.0) -> None:
        if not self._by_topic:
            return
        consumer = self._new_consumer()
        self._consumer = consumer
        partitions: list[TopicPartition] = []
        for topic in self._by_topic:
            metadata = retry_transient(
                partial(consumer.list_topics, topic, 30),
                f"metadata of {topic}",
                deadline_s=self._config.task_timeout_s,
            )
            partitions += [
                TopicPartition(topic, p, OFFSET_BEGINNING)
                for p in metadata.topics[topic].partitions
            ]
        ends = {
            (tp.topic, tp.partition): retry_transient(
                partial(consumer.get_watermark_offsets, tp, 30),
                f"end offset of {tp.topic}[{tp.partition}]",
                deadline_s=self._config.task_timeout_s,
            )[1]
            for tp in partitions
        }
        waiting = {tp for tp, end in ends.items() if end > 0}
        now = time.monotonic()
        self._next = {(tp.topic, tp.partition): OFFSET_BEGINNING for tp in partitions}
        self._moved = dict.fromkeys(self._next, now)
        self._looked = now
        consumer.assign(partitions)
        deadline = now + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise KafkaError(f"global tables not restored in {timeout_s:.0f}s: {waiting}")
            self._look_at_consumer()
            for msg in self._consumer.consume(num_messages=1000, timeout=0.2):
                tp = (msg.topic() or "", msg.partition() or 0)
                error = msg.error()
                if error is not None and error.code() == ClientError._PARTITION_EOF:
                    waiting.discard(tp)
                    continue
                self._apply(msg)
                self.restored_records += 1
                if (msg.offset() or 0) + 1 >= ends.get(tp, 0):
                    waiting.discard(tp)
        log.info("global tables restored: %d records", self.restored_records)

    def _new_consumer(self) -> Consumer:
        settings: dict[str, Any] = {
            "topic.metadata.refresh.interval.ms": METADATA_REFRESH_MS,
            **self._config.client_config(),
            "group.id": f"{self._config.application_id}-global",  # never joins: assign only
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
        }
        if self._config.exactly_once:
            settings["isolation.level"] = "read_committed"
        return Consumer(settings)

    def _look_at_consumer(self) -> None:
        """Every :data:`STALL_S`: is the consumer stuck on partitions that handed nothing over
        for that long? Then a new one goes on from the offsets applied so far."""
        now = time.monotonic()
        if self._consumer is None or now - self._looked < STALL_S:
            return
        self._looked = now
        idle = sorted(tp for tp, moved in self._moved.items() if now - moved >= STALL_S)
        if not idle:
            return
        turn = self._turn % len(idle)
        self._turn += CHECKED_PER_LOOK
        asked = (idle[turn:] + idle[:turn])[:CHECKED_PER_LOOK]
        stuck, stable = stable_offsets(
            self._consumer, {tp: self._next[tp] for tp in asked}, self._config.client_config()
        )
        if not stuck:
            return
        old = self._consumer
        self._consumer = self._new_consumer()
        self._consumer.assign([TopicPartition(t, p, o) for (t, p), o in self._next.items()])
        self.replacements += 1
        where = [f"{t}[{p}] at {_at(self._next[(t, p)])}: {o}" for (t, p), o in stable.items()]
        log.warning(
            "replacing the global table consumer: it has not fetched up to the last stable "
            "offset for %.0fs, or has lost every broker (%s); the new one goes on from the "
            "offsets applied so far",
            STALL_S,
            "; ".join(where),
        )
        close_in_background(old, "global")

    def _apply(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != ClientError._PARTITION_EOF:
                log.warning("global table consumer: %s", error)
            return
        topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
        if topic is not None and partition is not None and offset is not None:
            self._next[(topic, partition)] = offset + 1
            self._moved[(topic, partition)] = time.monotonic()
        entry = self._by_topic.get(msg.topic() or "")
        key, value = msg.key(), msg.value()
        if entry is None or key is None:
            return
        spec, store = entry
        try:
            spec.key_serde.deserialize(key)
            if value is not None:
                spec.value_serde.deserialize(value)
        except Exception as exc:
            log.warning(
                "global table: skipping a bad record %s[%s]@%s: %s",
                msg.topic(),
                msg.partition(),
                msg.offset(),
                loggable(exc),
            )
            return
        store.restore_batch([(key, value, msg.timestamp()[1])])

    def poll(self) -> None:
        if self._consumer is None:
            return
        self._look_at_consumer()
        for msg in self._consumer.consume(num_messages=500, timeout=0):
            self._apply(msg)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        for store in self.stores.values():
            store.close()


def _at(offset: int) -> str:
    return "beginning" if offset < 0 else str(offset)

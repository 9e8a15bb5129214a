"""Global tables: every partition of the topic, replicated in full into a store on every
instance. Restored from the beginning before any task processes; then kept current by
``poll()`` from the processing loop. Records that do not deserialize are skipped (logged)."""

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
from streamtable.runtime.config import StreamsConfig
from streamtable.state import BytesStore, MemoryBytesStore, RocksDBBytesStore, SerdeStore
from streamtable.topology import SourceSpec, Topology, build_store

log = logging.getLogger("streamtable.runtime.global")


class GlobalStores:
    def __init__(
        self, topology: Topology, config: StreamsConfig, state_dir: StateDirectory
    ) -> None:
        self.stores: dict[str, SerdeStore] = {}
        self._by_topic: dict[str, tuple[SourceSpec, SerdeStore]] = {}
        self._consumer: Consumer | None = None
        self._config = config
        self.restored_records = 0
        root = state_dir.app_dir / "global"
        shutil.rmtree(root, ignore_errors=True)  # rebuilt in full at every start
        for glob in topology.global_tables:
            spec = topology.stores[glob.store]
            kind = config.store_kind if spec.kind == "default" else spec.kind
            engine: BytesStore = (
                RocksDBBytesStore(root / glob.store) if kind == "rocksdb" else MemoryBytesStore()
            )
            store = build_store(spec, engine, config.application_id, 0, None, None)[0]
            self.stores[glob.store] = store
            self._by_topic[glob.source.topic] = (glob.source, store)

    def restore(self, timeout_s: float = 300.0) -> None:
        if not self._by_topic:
            return
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
        consumer = Consumer(settings)
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
        consumer.assign(partitions)
        deadline = time.monotonic() + timeout_s
        while waiting:
            if time.monotonic() > deadline:
                raise KafkaError(f"global tables not restored in {timeout_s:.0f}s: {waiting}")
            for msg in consumer.consume(num_messages=1000, timeout=0.2):
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

    def _apply(self, msg: Message) -> None:
        error = msg.error()
        if error is not None:
            if error.code() != ClientError._PARTITION_EOF:
                log.warning("global table consumer: %s", error)
            return
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
        for msg in self._consumer.consume(num_messages=500, timeout=0):
            self._apply(msg)

    def close(self) -> None:
        if self._consumer is not None:
            self._consumer.close()
            self._consumer = None
        for store in self.stores.values():
            store.close()

"""Global tables: every partition of the topic, replicated in full into a store on every
instance. Restored from the beginning before any task processes; then kept current by
``poll()`` from the processing loop. Records that do not deserialize are skipped (logged).
The topics are read by a :class:`ChangelogReader`: a consumer that stops fetching while the
broker holds records for it (seen after broker restarts, ``_stuck.py``) is replaced by a new one
at the offsets applied so far: a global table that silently stopped following its topic would
join every record with stale values."""

from __future__ import annotations

import logging
import shutil
import time
from functools import partial
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from streamtable.errors import KafkaError, loggable
from streamtable.runtime._changelog import ChangelogPartition, ChangelogReader
from streamtable.runtime._clients import METADATA_REFRESH_MS, retry_transient
from streamtable.runtime._statedir import StateDirectory
from streamtable.runtime.config import StreamsConfig
from streamtable.state import SerdeStore, open_engine
from streamtable.topology import SourceSpec, Topology, build_store

log = logging.getLogger("streamtable.runtime.global")


class GlobalStores:
    def __init__(
        self, topology: Topology, config: StreamsConfig, state_dir: StateDirectory
    ) -> None:
        self.stores: dict[str, SerdeStore] = {}
        self._by_topic: dict[str, tuple[SourceSpec, SerdeStore]] = {}
        self.reader: ChangelogReader | None = None  # from restore() on
        self._config = config
        self.restored_records = 0
        root = state_dir.app_dir / "global"
        shutil.rmtree(root, ignore_errors=True)  # rebuilt in full at every start
        for glob in topology.global_tables:
            spec = topology.stores[glob.store]
            persistent = spec.persistent(config.store_kind)
            engine = open_engine(persistent, root / glob.store, state_dir.memory)
            store = build_store(spec, engine, config.application_id, 0, None, None)[0]
            self.stores[glob.store] = store
            self._by_topic[glob.source.topic] = (glob.source, store)

    @property
    def replacements(self) -> int:
        return 0 if self.reader is None else self.reader.replacements

    def restore(self, timeout_s: float = 300.0) -> None:
        """Read every partition of every global table's topic up to its end offset now, then
        keep tailing it (:meth:`poll`)."""
        if not self._by_topic:
            return
        reader = ChangelogReader(
            self._new_consumer(), "global", self._new_consumer, self._config.client_config()
        )
        self.reader = reader
        parts = [
            ChangelogPartition((topic, p), store, check=partial(_valid, spec, (topic, p)))
            for topic, (spec, store) in self._by_topic.items()
            for p in self._partitions(reader.consumer, topic)
        ]
        ends = {part.tp: self._end(reader.consumer, part.tp) for part in parts}
        for part in parts:  # read to the end now (completing), then tail it (no end)
            part.end = ends[part.tp] if ends[part.tp] > 0 else None
        reader.add(parts)
        deadline = time.monotonic() + timeout_s
        while any(p.end is not None for p in parts) and len(reader.done) < len(parts):
            if time.monotonic() > deadline:
                waiting = sorted(
                    p.tp for p in parts if p.end is not None and p.tp not in reader.done
                )
                raise KafkaError(f"global tables not restored in {timeout_s:.0f}s: {waiting}")
            read, _ = reader.read(1000, 0.2)
            self.restored_records += read
            reader.watch()
            if all(p.end is None or p.tp in reader.done for p in parts):
                break
        for part in parts:
            part.end = None  # tails from here on
        reader.done.clear()
        reader.add([])  # assigned again at the positions restored to
        log.info("global tables restored: %d records", self.restored_records)

    def _partitions(self, consumer: Consumer, topic: str) -> list[int]:
        metadata = retry_transient(
            partial(consumer.list_topics, topic, 30),
            f"metadata of {topic}",
            deadline_s=self._config.task_timeout_s,
        )
        return sorted(metadata.topics[topic].partitions)

    def _end(self, consumer: Consumer, tp: tuple[str, int]) -> int:
        high: int = retry_transient(
            partial(consumer.get_watermark_offsets, TopicPartition(*tp), 30),
            f"end offset of {tp[0]}[{tp[1]}]",
            deadline_s=self._config.task_timeout_s,
        )[1]
        return high

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

    def poll(self) -> None:
        if self.reader is None:
            return
        self.reader.watch()
        self.reader.read(500, 0)

    def close(self) -> None:
        if self.reader is not None:
            self.reader.close()
            self.reader = None
        for store in self.stores.values():
            store.close()


def _valid(spec: SourceSpec, tp: tuple[str, int], key: bytes, value: bytes | None) -> bool:
    """Records that do not deserialize are skipped, and logged (no dead-letter topic here)."""
    try:
        spec.key_serde.deserialize(key)
        if value is not None:
            spec.value_serde.deserialize(value)
    except Exception as exc:
        log.warning("global table: skipping a bad record of %s[%s]: %s", *tp, loggable(exc))
        return False
    return True

"""TopologyTestDriver: run a topology in-process, synchronously, with no broker.

As Kafka Streams' driver: one task per sub-topology (partition 0), the record cache flushed
(a commit) after every record, internal topics (repartition, foreign-key join) captured and
processed before ``pipe`` returns, stream-time punctuators fired by record timestamps and
wall-clock punctuators by :meth:`TopologyTestDriver.advance_wall_clock`.

Example::

    with st.TopologyTestDriver(topology) as driver:
        driver.input_topic("share-holders").pipe("1", {"client": "c1", ...})
        assert driver.key_value_store("us-share-holders").get("c1") == frozenset({"1"})

Windowed aggregations run on the stream time of the piped records' timestamps; read their
stores with :meth:`TopologyTestDriver.window_store` (session-windowed ones with
:meth:`TopologyTestDriver.session_store`).
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any

from streamtable.errors import StoreNotFound, TopologyError
from streamtable.serde import Serde, bind, deserialize_with, serialize_with
from streamtable.state import (
    CacheBudget,
    ReadOnlyKeyValueStore,
    ReadOnlySessionStore,
    ReadOnlyWindowStore,
    open_engine,
)
from streamtable.topology import SourceSpec, TaskCore, TaskHooks, Topology, build_store

Headers = list[tuple[str, bytes | None]] | None
_Raw = tuple[bytes | None, bytes | None, int, Headers]


class _Collector:
    """Captures every record the tasks emit; internal topics are queued for processing."""

    def __init__(self, driver: TopologyTestDriver) -> None:
        self._driver = driver

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        timestamp: int,
        partition: int | None,
        headers: Headers,
    ) -> None:
        self._driver._captured(topic, key, value, timestamp, headers)

    def send_changelog(
        self, topic: str, partition: int, key: bytes, value: bytes | None, timestamp: int
    ) -> None:
        self._driver._captured(topic, key, value, timestamp, None)

    def partitions_of(self, topic: str) -> int:
        return 1


class TestInputTopic:
    """Pipes records into one input topic, serialized with the topology's serdes."""

    __test__ = False  # not a pytest test class

    def __init__(
        self, driver: TopologyTestDriver, topic: str, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> None:
        self._driver = driver
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde

    def pipe(
        self,
        key: Any,
        value: Any,
        timestamp: int | datetime | None = None,
        headers: Headers = None,
    ) -> None:
        """Send one record (``value=None`` is a tombstone) and process everything it causes."""
        kb = None if key is None else serialize_with(self._key_serde, key, headers)
        vb = None if value is None else serialize_with(self._value_serde, value, headers)
        self._driver._pipe(self.topic, kb, vb, self._driver._timestamp(timestamp), headers)

    def pipe_many(self, pairs: Iterable[tuple[Any, Any]]) -> None:
        """Send ``(key, value)`` pairs in order, each processed before the next."""
        for key, value in pairs:
            self.pipe(key, value)

    def pipe_raw(
        self, key: bytes | None, value: bytes | None, timestamp: int | None = None
    ) -> None:
        """Send bytes as they would arrive from Kafka (to test bad input)."""
        self._driver._pipe(self.topic, key, value, self._driver._timestamp(timestamp), None)


class TestOutputTopic:
    """Reads what the topology wrote to one topic, deserialized; each record read once."""

    __test__ = False

    def __init__(
        self, driver: TopologyTestDriver, topic: str, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> None:
        self._driver = driver
        self.topic = topic
        self._key_serde = key_serde
        self._value_serde = value_serde
        self._position = 0

    def _take(self) -> list[_Raw]:
        records = self._driver._outputs.get(self.topic, [])
        new = records[self._position :]
        self._position = len(records)
        return new

    def _decode(self, raw: _Raw) -> tuple[Any, Any, int, Headers]:
        kb, vb, ts, headers = raw
        key = None if kb is None else deserialize_with(self._key_serde, kb, headers)
        value = None if vb is None else deserialize_with(self._value_serde, vb, headers)
        return key, value, ts, headers

    def read_key_values(self) -> list[tuple[Any, Any]]:
        """Every unread record as ``(key, value)``; a tombstone's value is None."""
        return [self._decode(r)[:2] for r in self._take()]

    def read_records(self) -> list[tuple[Any, Any, int, Headers]]:
        """Every unread record as ``(key, value, timestamp, headers)``."""
        return [self._decode(r) for r in self._take()]

    def read_key_values_to_dict(self) -> dict[Any, Any]:
        """The unread records folded into the latest value per key (tombstones delete)."""
        result: dict[Any, Any] = {}
        for key, value in self.read_key_values():
            if value is None:
                result.pop(key, None)
            else:
                result[key] = value
        return result

    def is_empty(self) -> bool:
        return self._position >= len(self._driver._outputs.get(self.topic, []))


class TopologyTestDriver:
    """Runs a topology without Kafka. See the module docstring."""

    def __init__(
        self,
        topology: Topology,
        *,
        config: Mapping[str, Any] | None = None,
        start_time: int | datetime | None = None,
    ) -> None:
        config = dict(config or {})
        self.application_id = str(config.get("application_id", "test-driver"))
        # Contextual serdes (schema registry) learn their topics here, once, as in StreamsApp.
        topology = topology.bind_serdes(self.application_id)
        self.topology = topology
        if start_time is None:
            self._wall_ms = int(time.time() * 1000)
        elif isinstance(start_time, datetime):
            self._wall_ms = int(start_time.timestamp() * 1000)
        else:
            self._wall_ms = int(start_time)
        self._outputs: dict[str, list[_Raw]] = {}
        self._pending: deque[tuple[str, _Raw]] = deque()
        self._internal = {f"{self.application_id}-{s}" for s in topology.internal_topics}
        collector = _Collector(self)
        self._collector = collector
        budget = CacheBudget(int(config.get("cache_max_bytes", 10 * 1024 * 1024)))

        self._stores: dict[str, Any] = {}
        for name, spec in topology.stores.items():
            self._stores[name] = build_store(
                spec, open_engine(persistent=False), self.application_id, 0, collector, budget
            )[1]
        global_names = {g.store for g in topology.global_tables}
        global_stores = {n: self._stores[n] for n in global_names}
        self._global_sources: dict[str, tuple[SourceSpec, Any]] = {
            g.source.topic: (g.source, self._stores[g.store]) for g in topology.global_tables
        }
        self._tasks: list[TaskCore] = []
        self._task_by_topic: dict[str, TaskCore] = {}
        for sub in topology.subtopologies:
            task = TaskCore(
                topology,
                sub,
                0,
                self.application_id,
                {n: self._stores[n] for n in sub.stores},
                global_stores,
                collector,
                TaskHooks(lambda: self._wall_ms),
            )
            self._tasks.append(task)
            for topic in task.topics:
                self._task_by_topic[topic] = task
        self._closed = False

    # -- topics ----------------------------------------------------------------------------
    def input_topic(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> TestInputTopic:
        spec = self._source_spec(topic)
        return TestInputTopic(
            self,
            topic,
            bind(key_serde or spec.key_serde, topic, True),
            bind(value_serde or spec.value_serde, topic, False),
        )

    def output_topic(
        self,
        topic: str,
        *,
        key_serde: Serde[Any] | None = None,
        value_serde: Serde[Any] | None = None,
    ) -> TestOutputTopic:
        if key_serde is None or value_serde is None:
            sink = next(
                (s for sub in self.topology.subtopologies for s in sub.sinks if s.topic == topic),
                None,
            )
            if sink is None:
                raise TopologyError(f"no sink writes to {topic!r}; pass key_serde and value_serde")
            key_serde = key_serde or sink.key_serde
            value_serde = value_serde or sink.value_serde
        return TestOutputTopic(
            self, topic, bind(key_serde, topic, True), bind(value_serde, topic, False)
        )

    def _source_spec(self, topic: str) -> SourceSpec:
        if topic in self._global_sources:
            return self._global_sources[topic][0]
        for sub in self.topology.subtopologies:
            for src in sub.sources:
                if not src.internal and src.topic == topic:
                    return src
        raise TopologyError(f"topic {topic!r} is not an input of this topology")

    # -- stores ----------------------------------------------------------------------------
    def key_value_store(self, name: str) -> ReadOnlyKeyValueStore:
        """A read-only view of a key-value store, as queries see it."""
        return ReadOnlyKeyValueStore(self._store_of_type(name, "key_value", "window_store"))

    def window_store(self, name: str) -> ReadOnlyWindowStore:
        """A read-only view of a window store (``windowed_by(...).count(store=name)``...)."""
        return ReadOnlyWindowStore.over(self._store_of_type(name, "window", "key_value_store"))

    def session_store(self, name: str) -> ReadOnlySessionStore:
        """A read-only view of a session store (``windowed_by(SessionWindows...).count(store=
        name)``...)."""
        return ReadOnlySessionStore.over(self._store_of_type(name, "session", "key_value_store"))

    def _store_of_type(self, name: str, store_type: str, other_reader: str) -> Any:
        store = self._stores.get(name)
        if store is None:
            raise StoreNotFound(name, list(self._stores))
        found = self.topology.stores[name].store_type
        if found != store_type:
            raise TopologyError(f"store {name!r} is a {found} store: read it with {other_reader}()")
        return store

    def dropped_records(self) -> dict[str, int]:
        """Records the processors dropped so far, per reason: ``late`` (a window closed),
        ``null_key``, ``null_value`` (what ``streamtable_dropped_records_total`` counts)."""
        total: Counter[str] = Counter()
        for task in self._tasks:
            total.update(task.dropped_records())
        return dict(total)

    @property
    def store_names(self) -> list[str]:
        return sorted(self._stores)

    # -- time ------------------------------------------------------------------------------
    def advance_wall_clock(self, seconds: float | timedelta) -> None:
        """Move the driver's wall clock on and fire wall-clock punctuators that are due."""
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else seconds
        if delta < 0:
            raise ValueError("the wall clock cannot go backwards")
        self._wall_ms += int(delta * 1000)
        for task in self._tasks:
            task.punctuate_wall_clock()
            self._commit()

    @property
    def wall_clock_ms(self) -> int:
        return self._wall_ms

    def _timestamp(self, timestamp: int | datetime | None) -> int:
        if timestamp is None:
            return self._wall_ms
        ts = (
            int(timestamp.timestamp() * 1000) if isinstance(timestamp, datetime) else int(timestamp)
        )
        if ts < 0:
            raise ValueError(f"record timestamps must not be negative, got {ts}")
        return ts

    # -- processing ------------------------------------------------------------------------
    def _pipe(
        self, topic: str, key: bytes | None, value: bytes | None, ts: int, headers: Headers
    ) -> None:
        if self._closed:
            raise TopologyError("the driver is closed")
        glob = self._global_sources.get(topic)
        if glob is not None:
            spec, store = glob
            if key is not None:
                k = deserialize_with(spec.key_serde, key, headers)
                v = None if value is None else deserialize_with(spec.value_serde, value, headers)
                store.put(k, v, ts)
            return
        task = self._task_by_topic.get(topic)
        if task is None:
            raise TopologyError(f"topic {topic!r} is not an input of this topology")
        task.process(topic, key, value, ts, -1, headers)
        self._commit()

    def _commit(self) -> None:
        """Flush caches (Kafka Streams commits after every record here), then process what
        landed on internal topics, earliest timestamp first, one record per commit."""
        while True:
            for task in self._tasks:
                task.flush()
                task.after_delivered()
            if not self._pending:
                return
            index = min(range(len(self._pending)), key=lambda i: self._pending[i][1][2])
            topic, (kb, vb, ts, headers) = self._pending[index]
            del self._pending[index]
            self._task_by_topic[topic].process(topic, kb, vb, ts, -1, headers)

    def _captured(
        self, topic: str, key: bytes | None, value: bytes | None, ts: int, headers: Headers
    ) -> None:
        self._outputs.setdefault(topic, []).append((key, value, ts, headers))
        if topic in self._internal:
            self._pending.append((topic, (key, value, ts, headers)))

    def produced_topics(self) -> Iterator[str]:
        return iter(sorted(self._outputs))

    # -- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        if not self._closed:
            self._closed = True
            for task in self._tasks:
                task.close()

    def __enter__(self) -> TopologyTestDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

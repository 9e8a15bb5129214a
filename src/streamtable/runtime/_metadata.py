"""Who hosts what: the live instances of one application and their active partitions, for
routing interactive queries.

librdkafka cannot put user data into the group protocol (Kafka Streams advertises each member's
``application.server`` there), so instances advertise themselves on a compacted internal topic,
``<application_id>-instances`` (one partition, key = instance id):

* each instance publishes an :class:`InstanceRecord` (its ``application_server``, the partitions
  of each sub-topology it runs as active tasks, a generation that grows on every change of its
  tasks, the time its current task set formed, a wall-clock timestamp) whenever its tasks change
  and every ``heartbeat_s``; when it closes it writes a tombstone;
* each instance tails the topic with a group-less consumer (the one partition, from the
  beginning) on its own thread and keeps the newest record per instance. A record older than
  ``3 x`` its sender's heartbeat is ignored (a crashed instance), and so is a record from another
  instance id that advertises this instance's own ``application_server`` (a predecessor of this
  process that did not close cleanly).

The view converges within a poll interval after a rebalance and is safe when stale: the instance
that receives a query checks that it owns the key's partition and answers "not owner" otherwise
(see :mod:`streamtable.query`), never from a store it does not own. When two live records claim a
partition, the one whose task set formed last wins. Timestamps are the senders' wall clocks:
hosts are assumed to be NTP-synchronised to well within a heartbeat.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from streamtable.errors import StoreNotFound, StoreNotReady, loggable
from streamtable.runtime._clients import cut_off
from streamtable.runtime._metadata_types import (
    HostInfo,
    InstanceRecord,
    KeyQueryMetadata,
    StreamsMetadata,
)
from streamtable.runtime._stuck import close_in_background
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.topics import TopicPlan, instances_topic
from streamtable.topology import Topology, partition_for

__all__ = [
    "HostInfo",
    "InstanceDirectory",
    "InstanceRecord",
    "KeyQueryMetadata",
    "StreamsMetadata",
]

log = logging.getLogger("streamtable.runtime.metadata")

_POLL_S = 0.1  # bounds how late a change is published and a peer's record is seen


class InstanceDirectory:
    """This instance's record and its view of its peers (see the module docstring).

    The processing thread reports task changes with :meth:`set_active`; queries read
    :meth:`local_metadata`, :meth:`all_metadata` and :meth:`metadata_for_key` from any thread.
    """

    def __init__(
        self,
        topology: Topology,
        config: StreamsConfig,
        instance_id: str,
        state: Callable[[], str],
        *,
        heartbeat_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.heartbeat_s = heartbeat_s
        self._topology = topology
        self._config = config
        self._instance_id = instance_id
        self._server = config.application_server
        self._state = state
        self._clock = clock
        self._topic = instances_topic(config.application_id)
        self._lock = threading.Lock()
        self._active: dict[int, tuple[int, ...]] = {}
        self._standby: dict[int, tuple[int, ...]] = {}
        self._generation = 0
        self._assigned_ms = 0
        self._counts: dict[int, int] | None = None  # sub-topology id -> partitions, once started
        self._peers: dict[str, InstanceRecord] = {}
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._store_sub = {store: sub.id for sub in topology.subtopologies for store in sub.stores}

    # -- fed by the app ----------------------------------------------------------------------
    def set_active(self, tasks: Iterable[tuple[int, int]]) -> None:
        """The app's active tasks, as ``(sub-topology id, partition)``, after any change."""
        active: dict[int, set[int]] = {}
        for sub, partition in tasks:
            active.setdefault(sub, set()).add(partition)
        frozen = {s: tuple(sorted(ps)) for s, ps in sorted(active.items())}
        with self._lock:
            if frozen == self._active:
                return
            self._active = frozen
            self._generation += 1
            self._assigned_ms = self._now_ms()
        self._changed.set()

    def set_standby(self, tasks: Iterable[tuple[int, int]]) -> None:
        """The app's standby tasks, as ``(sub-topology id, partition)``, after any change."""
        standby: dict[int, set[int]] = {}
        for sub, partition in tasks:
            standby.setdefault(sub, set()).add(partition)
        frozen = {s: tuple(sorted(ps)) for s, ps in sorted(standby.items())}
        with self._lock:
            if frozen == self._standby:
                return
            self._standby = frozen
        self._changed.set()

    def live_records(self) -> list[InstanceRecord]:
        """This instance's record and every live peer's (for placing standby tasks)."""
        with self._lock:
            return [self._record(), *self._live_peers()]

    def start(self, plan: TopicPlan) -> None:
        """Learn the partition counts and start publishing and tailing on a background thread."""
        app = self._config.application_id
        self.set_partition_counts(
            {
                sub.id: max(plan.count(t) for t in sub.source_topics(app))
                for sub in self._topology.subtopologies
            }
        )
        self._thread = threading.Thread(
            target=self._run, name=f"streamtable-{app}-instances", daemon=True
        )
        self._thread.start()

    def set_partition_counts(self, counts: Mapping[int, int]) -> None:
        """Each sub-topology's number of partitions (tasks); :meth:`start` sets it."""
        with self._lock:
            self._counts = dict(counts)

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread; it publishes a tombstone for this instance on the way out."""
        self._stop.set()
        self._changed.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    # -- read by queries ---------------------------------------------------------------------
    @property
    def generation(self) -> int:
        return self._generation

    def local_record(self) -> InstanceRecord:
        """What this instance publishes about itself now."""
        with self._lock:
            return self._record()

    def local_metadata(self) -> StreamsMetadata:
        with self._lock:
            record = self._record()
        return self._metadata(record, is_local=True)

    def all_metadata(self) -> list[StreamsMetadata]:
        """This instance and every live peer, by application server then instance id."""
        with self._lock:
            records = [self._record(), *self._live_peers()]
        found = [self._metadata(r, is_local=r.instance_id == self._instance_id) for r in records]
        return sorted(found, key=lambda m: (str(m.host_info or ""), m.instance_id))

    def metadata_for_key(self, store: str, key_bytes: bytes) -> KeyQueryMetadata:
        """The owner of the partition ``key_bytes`` (serialized with the store's key serde)
        belongs to. Raises :class:`StoreNotFound`, or :class:`StoreNotReady` before start."""
        spec = self._topology.stores.get(store)
        if spec is None:
            raise StoreNotFound(store, list(self._topology.stores))
        local_host = None if self._server is None else HostInfo.parse(self._server)
        sub = self._store_sub.get(store)
        if sub is None:  # a global store: every instance has all of it
            return KeyQueryMetadata(store, None, self._instance_id, local_host, True)
        with self._lock:
            if self._counts is None:
                raise StoreNotReady(store, "the app has not started")
            partition = partition_for(key_bytes, self._counts[sub])
            local = partition in self._active.get(sub, ())
        if local:
            return KeyQueryMetadata(
                store,
                partition,
                self._instance_id,
                local_host,
                True,
                self._standby_hosts(sub, partition),
            )
        with self._lock:
            claims = [r for r in self._live_peers() if partition in r.active.get(sub, ())]
        if not claims:
            return KeyQueryMetadata(store, partition, None, None, False)
        owner = max(claims, key=lambda r: (r.assigned_ms, r.timestamp_ms))
        host = None if owner.server is None else HostInfo.parse(owner.server)
        return KeyQueryMetadata(
            store, partition, owner.instance_id, host, False, self._standby_hosts(sub, partition)
        )

    def _standby_hosts(self, sub: int, partition: int) -> tuple[HostInfo, ...]:
        with self._lock:
            records = [self._record(), *self._live_peers()]
        return tuple(
            sorted(
                HostInfo.parse(r.server)
                for r in records
                if r.server is not None and partition in r.standby.get(sub, ())
            )
        )

    # -- internals ---------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self._clock() * 1000)

    def _record(self) -> InstanceRecord:
        return InstanceRecord(
            instance_id=self._instance_id,
            server=self._server,
            active=dict(self._active),
            standby=dict(self._standby),
            generation=self._generation,
            assigned_ms=self._assigned_ms,
            timestamp_ms=self._now_ms(),
            heartbeat_ms=int(self.heartbeat_s * 1000),
            state=self._state(),
        )

    def _live_peers(self) -> list[InstanceRecord]:
        now = self._now_ms()
        return [
            r
            for r in self._peers.values()
            if not r.expired(now)
            and r.instance_id != self._instance_id
            and (self._server is None or r.server != self._server)
        ]

    def _metadata(self, record: InstanceRecord, *, is_local: bool) -> StreamsMetadata:
        counts = self._counts or {}
        active: dict[str, tuple[int, ...]] = {}
        standby: dict[str, tuple[int, ...]] = {}
        partition_counts: dict[str, int] = {}
        for sub in self._topology.subtopologies:
            for store in sub.stores:
                active[store] = record.active.get(sub.id, ())
                standby[store] = record.standby.get(sub.id, ())
                if sub.id in counts:
                    partition_counts[store] = counts[sub.id]
        return StreamsMetadata(
            instance_id=record.instance_id,
            host_info=None if record.server is None else HostInfo.parse(record.server),
            active=MappingProxyType(active),
            standby=MappingProxyType(standby),
            partition_counts=MappingProxyType(partition_counts),
            state=record.state,
            generation=record.generation,
            timestamp_ms=record.timestamp_ms,
            is_local=is_local,
        )

    def apply(self, key: bytes | None, value: bytes | None) -> None:
        """Take in one record of the instances topic (a tombstone removes the instance)."""
        if key is None:
            return
        instance = key.decode(errors="replace")
        if value is None:
            with self._lock:
                self._peers.pop(instance, None)
            return
        try:
            record = InstanceRecord.decode(value)
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring a malformed record on %s: %s", self._topic, loggable(exc))
            return
        with self._lock:
            self._peers[record.instance_id] = record

    def _run(self) -> None:
        settings = self._config.client_config()
        producer = _instances_producer(settings)
        consumer = _instances_consumer(settings, self._config.application_id)
        key = self._instance_id.encode()
        try:
            consumer.assign([TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
            last_publish = 0.0
            # This instance's own heartbeats come back through its consumer: none for three
            # heartbeats, and a client that has lost every broker (_clients.cut_off) is
            # replaced; otherwise peers would expire this instance, or it its peers.
            echoed = looked = time.monotonic()
            while not self._stop.is_set():
                try:
                    for msg in consumer.consume(num_messages=500, timeout=_POLL_S):
                        if msg.error() is None:
                            self.apply(msg.key(), msg.value())
                            echoed = time.monotonic() if msg.key() == key else echoed
                        else:
                            log.debug("instances consumer: %s", msg.error())
                    due = time.monotonic() - last_publish >= self.heartbeat_s
                    if due or self._changed.is_set():
                        self._changed.clear()
                        with self._lock:
                            record = self._record()
                        producer.produce(self._topic, key=key, value=record.encode())
                        last_publish = time.monotonic()
                    producer.poll(0)
                    now = time.monotonic()
                    silent = 3 * self.heartbeat_s
                    if now - echoed >= silent and now - looked >= silent:
                        looked = now
                        if cut_off(producer, settings):
                            log.warning("instance metadata: replacing its producer (cut off)")
                            close_in_background(producer, "instances")
                            producer = _instances_producer(settings)
                        if cut_off(consumer, settings):
                            log.warning("instance metadata: replacing its consumer (cut off)")
                            close_in_background(consumer, "instances")
                            consumer = _instances_consumer(settings, self._config.application_id)
                            consumer.assign([TopicPartition(self._topic, 0, OFFSET_BEGINNING)])
                except KafkaException as exc:  # a broker hiccup: the next heartbeat retries
                    log.warning("instance metadata: %s", exc)
            producer.produce(self._topic, key=key, value=None)  # gone: peers drop us at once
            producer.flush(5.0)
        except Exception:
            log.exception("instance metadata thread failed; peers will expire this instance")
        finally:
            consumer.close()


def _instances_producer(settings: dict[str, Any]) -> Producer:
    return Producer({**settings, "linger.ms": 0, "acks": "all"})


def _instances_consumer(settings: dict[str, Any], application_id: str) -> Consumer:
    return Consumer(
        {
            **settings,
            "group.id": f"{application_id}-instances",  # assign-only: no joins
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )

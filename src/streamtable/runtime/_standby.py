"""Standby tasks (``num_standby_replicas``): warm copies of other instances' stores.

Placement needs no coordinator: every instance sees the live instances and their active tasks
on ``<app>-instances``, orders the instances by id in a ring, and for each task keeps a standby
on the ``num_standby_replicas`` instances that follow the task's active owner in that ring. A
standby tails the task's changelogs into the same directory an active task would use
(``<state_dir>/<app>/<task id>/``) and checkpoints what it applied; when the task moves here,
the standby is released first and the active task restores only the tail past that checkpoint.

A table source whose changelog is its input topic is tailed only up to the group's committed
offset (what the active task has processed), so a promoted standby holds nothing the active
task had not committed. Under ``exactly_once_v2`` the consumer reads ``read_committed``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from streamtable.runtime._metadata import InstanceRecord
from streamtable.runtime._restore import valid_source_record
from streamtable.runtime._statedir import StateDirectory, read_checkpoint, write_checkpoint
from streamtable.runtime._task import CHECKPOINT_DELTA
from streamtable.runtime.config import StreamsConfig
from streamtable.state import SerdeStore, open_engine
from streamtable.topology import StoreSpec, Topology, build_store

log = logging.getLogger("streamtable.runtime.standby")

TP = tuple[str, int]
TaskKey = tuple[int, int]  # (sub-topology id, partition)


def standby_placement(
    records: Iterable[InstanceRecord], local_id: str, replicas: int
) -> set[TaskKey]:
    """The tasks this instance should keep standbys of, given every live instance's record."""
    records = list(records)
    ring = sorted({r.instance_id for r in records})
    if replicas <= 0 or local_id not in ring or len(ring) < 2:
        return set()
    owners: dict[TaskKey, InstanceRecord] = {}
    for record in records:
        for sub, partitions in record.active.items():
            for p in partitions:
                known = owners.get((sub, p))
                if known is None or (record.assigned_ms, record.timestamp_ms) > (
                    known.assigned_ms,
                    known.timestamp_ms,
                ):
                    owners[(sub, p)] = record
    wanted: set[TaskKey] = set()
    for task, owner in owners.items():
        at = ring.index(owner.instance_id)
        followers = (ring[at + 1 :] + ring[:at])[:replicas]
        if local_id in followers:
            wanted.add(task)
    return wanted


@dataclass
class _Standby:
    task_id: str
    checkpoint_path: Path
    stores: dict[TP, SerdeStore]
    source: set[TP]
    specs: dict[TP, StoreSpec]
    positions: dict[TP, int] = field(default_factory=dict)
    checkpointed: dict[TP, int] = field(default_factory=dict)


class StandbyTasks:
    """Hosts this instance's standby tasks; driven by the processing thread."""

    def __init__(
        self,
        topology: Topology,
        config: StreamsConfig,
        state_dir: StateDirectory,
        consumer: Consumer,
        committed: Callable[[list[TopicPartition]], list[TopicPartition]],
    ) -> None:
        self._topology = topology
        self._config = config
        self._state_dir = state_dir
        self._consumer = consumer
        self._committed = committed
        self._hosted: dict[TaskKey, _Standby] = {}
        self._by_tp: dict[TP, _Standby] = {}
        self._limits: dict[TP, int] = {}  # source changelogs: read below the committed offset
        self._paused: set[TP] = set()
        self._last_refresh = 0.0
        self.applied_records = 0

    @property
    def tasks(self) -> set[TaskKey]:
        return set(self._hosted)

    def positions(self) -> dict[TP, int]:
        """Per changelog partition the standbys follow: the next offset to apply (-2 for
        "from the beginning", before the first record)."""
        return {tp: standby.positions[tp] for tp, standby in self._by_tp.items()}

    def reconcile(self, wanted: set[TaskKey]) -> None:
        """Open the standbys newly wanted, close those no longer wanted."""
        changed = False
        for key in sorted(set(self._hosted) - wanted):
            self._close(key)
            changed = True
        for key in sorted(wanted - set(self._hosted)):
            changed |= self._open(key)
        if changed:
            self._assign()

    def release(self, task_id: str) -> None:
        """A task becomes active here: checkpoint and close its standby first."""
        for key, standby in list(self._hosted.items()):
            if standby.task_id == task_id:
                self._close(key)
                self._assign()

    def _open(self, key: TaskKey) -> bool:
        sub_id, partition = key
        sub = self._topology.subtopologies[sub_id]
        app = self._config.application_id
        task_id = f"{sub_id}_{partition}"
        directory = self._state_dir.task_dir(task_id)
        checkpoint_path = directory / ".checkpoint"
        checkpoint = read_checkpoint(checkpoint_path)
        stores: dict[TP, SerdeStore] = {}
        specs: dict[TP, StoreSpec] = {}
        source: set[TP] = set()
        for name in sub.stores:
            spec = self._topology.stores[name]
            kind = self._config.store_kind if spec.kind == "default" else spec.kind
            topic = spec.changelog_topic(app)
            if topic is None or kind != "rocksdb":
                continue  # nothing to keep warm: memory stores do not survive a move anyway
            engine = open_engine(True, directory / name)
            stores[(topic, partition)] = build_store(spec, engine, app, partition, None, None)[0]
            specs[(topic, partition)] = spec
            if spec.source_topic is not None:
                source.add((topic, partition))
        if not stores:
            return False
        standby = _Standby(task_id, checkpoint_path, stores, source, specs)
        for tp in stores:
            standby.positions[tp] = checkpoint.get(tp, OFFSET_BEGINNING)
            standby.checkpointed[tp] = checkpoint.get(tp, 0)
            self._by_tp[tp] = standby
        self._hosted[key] = standby
        log.info("standby %s opened at %s", task_id, checkpoint or "the beginning")
        self._refresh_limits(force=True)
        return True

    def _close(self, key: TaskKey) -> None:
        standby = self._hosted.pop(key)
        self._write_checkpoint(standby, force=True)
        for tp, store in standby.stores.items():
            store.close()
            self._by_tp.pop(tp, None)
            self._limits.pop(tp, None)
            self._paused.discard(tp)
        log.info("standby %s closed", standby.task_id)

    def _assign(self) -> None:
        self._consumer.assign(
            [TopicPartition(t, p, off) for (t, p), s in self._by_tp.items()
             for off in [s.positions[(t, p)]]]
        )  # fmt: skip
        self._paused.clear()

    def _refresh_limits(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_refresh < 1.0:
            return
        self._last_refresh = now
        sources = [TopicPartition(t, p) for (t, p), s in self._by_tp.items() if (t, p) in s.source]
        if not sources:
            return
        try:
            committed = self._committed(sources)
        except KafkaException as exc:  # the broker unreachable: keep the limits, ask again later
            log.warning("standbys: committed offsets not readable (%s)", exc.args[0])
            return
        for tp in committed:
            key = (tp.topic, tp.partition)
            self._limits[key] = max(tp.offset, 0)
            if key in self._paused and self._by_tp[key].positions[key] < self._limits[key]:
                self._consumer.resume([TopicPartition(*key)])
                self._paused.discard(key)

    def poll(self, max_records: int = 5000) -> int:
        """Apply what the changelogs have (without waiting); returns records applied."""
        if not self._hosted:
            return 0
        self._refresh_limits()
        batches: dict[TP, list[tuple[bytes, bytes | None, int]]] = {}
        applied = 0
        for msg in self._consumer.consume(num_messages=max_records, timeout=0):
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            if msg.error() is not None or topic is None or partition is None or offset is None:
                continue
            tp = (topic, partition)
            standby = self._by_tp.get(tp)
            if standby is None or tp in self._paused:
                continue
            limit = self._limits.get(tp)
            if limit is not None and offset >= limit:
                # Past what the active task committed: wait here until it commits more.
                self._consumer.seek(TopicPartition(topic, partition, offset))
                self._consumer.pause([TopicPartition(topic, partition)])
                self._paused.add(tp)
                continue
            key = msg.key()
            value = msg.value()
            if key is not None and (
                tp not in standby.source or valid_source_record(standby.specs[tp], key, value)
            ):  # a bad input record went to the DLQ, not into the active task's store
                batches.setdefault(tp, []).append((key, value, msg.timestamp()[1]))
            standby.positions[tp] = offset + 1
            applied += 1
        for tp, batch in batches.items():
            self._by_tp[tp].stores[tp].restore_batch(batch)
        self.applied_records += applied
        return applied

    def checkpoint(self) -> None:
        for standby in self._hosted.values():
            self._write_checkpoint(standby, force=False)

    def _write_checkpoint(self, standby: _Standby, force: bool) -> None:
        offsets = {tp: off for tp, off in standby.positions.items() if off >= 0}
        if not force and all(
            off - standby.checkpointed.get(tp, 0) < CHECKPOINT_DELTA for tp, off in offsets.items()
        ):
            return
        for store in standby.stores.values():
            store.flush()
        write_checkpoint(standby.checkpoint_path, offsets)
        standby.checkpointed = dict(offsets)

    def close(self) -> None:
        for key in list(self._hosted):
            self._close(key)
        self._consumer.close()

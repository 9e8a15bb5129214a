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
from functools import partial
from pathlib import Path

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from streamtable.runtime._changelog import TP, ChangelogPartition, ChangelogReader
from streamtable.runtime._metadata import InstanceRecord
from streamtable.runtime._restore import valid_source_record
from streamtable.runtime._statedir import StateDirectory, read_checkpoint, write_checkpoint
from streamtable.runtime._task import CHECKPOINT_DELTA
from streamtable.runtime.config import StreamsConfig
from streamtable.state import open_engine
from streamtable.topology import Topology, build_store

log = logging.getLogger("streamtable.runtime.standby")

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
    parts: dict[TP, ChangelogPartition]
    checkpointed: dict[TP, int] = field(default_factory=dict)


class StandbyTasks:
    """Hosts this instance's standby tasks; driven by the processing thread. The changelogs
    are read by a :class:`ChangelogReader` (tailing; a source changelog up to its limit)."""

    def __init__(
        self,
        topology: Topology,
        config: StreamsConfig,
        state_dir: StateDirectory,
        consumer: Consumer,
        committed: Callable[[list[TopicPartition]], list[TopicPartition]],
        renew: Callable[[], Consumer] | None = None,
    ) -> None:
        self._topology = topology
        self._config = config
        self._state_dir = state_dir
        self.reader = ChangelogReader(consumer, "standby", renew, config.client_config())
        self._committed = committed
        self._hosted: dict[TaskKey, _Standby] = {}
        self._sources: set[TP] = set()  # read below the group's committed offset only
        self._last_refresh = 0.0
        self.applied_records = 0

    @property
    def tasks(self) -> set[TaskKey]:
        return set(self._hosted)

    def positions(self) -> dict[TP, int]:
        """Per changelog partition the standbys follow: the next offset to apply (-2 for
        "from the beginning", before the first record)."""
        return {tp: part.position for tp, part in self.reader.parts.items()}

    def reconcile(self, wanted: set[TaskKey]) -> None:
        """Open the standbys newly wanted, close those no longer wanted."""
        for key in sorted(set(self._hosted) - wanted):
            self._close(key)
        for key in sorted(wanted - set(self._hosted)):
            self._open(key)

    def release(self, task_id: str) -> None:
        """A task becomes active here: checkpoint and close its standby first."""
        for key, standby in list(self._hosted.items()):
            if standby.task_id == task_id:
                self._close(key)

    def _open(self, key: TaskKey) -> bool:
        sub_id, partition = key
        sub = self._topology.subtopologies[sub_id]
        app = self._config.application_id
        task_id = f"{sub_id}_{partition}"
        directory = self._state_dir.task_dir(task_id)
        checkpoint_path = directory / ".checkpoint"
        checkpoint = read_checkpoint(checkpoint_path)
        parts: dict[TP, ChangelogPartition] = {}
        for name in sub.stores:
            spec = self._topology.stores[name]
            topic = spec.changelog_topic(app)
            if topic is None or not spec.persistent(self._config.store_kind):
                continue  # nothing to keep warm: memory stores do not survive a move anyway
            tp = (topic, partition)
            engine = open_engine(True, directory / name, self._state_dir.memory)
            store = build_store(spec, engine, app, partition, None, None)[0]
            parts[tp] = ChangelogPartition(tp, store, checkpoint.get(tp, OFFSET_BEGINNING))
            if spec.source_topic is not None:
                # Only what the active task has committed; nothing before the limit is known.
                parts[tp].limit = 0
                parts[tp].check = partial(valid_source_record, spec)
                self._sources.add(tp)
        if not parts:
            return False
        standby = _Standby(task_id, checkpoint_path, parts)
        standby.checkpointed = {tp: checkpoint.get(tp, 0) for tp in parts}
        self._hosted[key] = standby
        self.reader.add(parts.values())
        log.info("standby %s opened at %s", task_id, checkpoint or "the beginning")
        self._refresh_limits(force=True)
        return True

    def _close(self, key: TaskKey) -> None:
        standby = self._hosted.pop(key)
        self._write_checkpoint(standby, force=True)
        for tp, part in standby.parts.items():
            part.store.close()
            self._sources.discard(tp)
        self.reader.remove(standby.parts)
        log.info("standby %s closed", standby.task_id)

    def _refresh_limits(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_refresh < 1.0:
            return
        self._last_refresh = now
        if not self._sources:
            return
        try:
            committed = self._committed([TopicPartition(t, p) for t, p in sorted(self._sources)])
        except KafkaException as exc:  # the broker unreachable: keep the limits, ask again later
            log.warning("standbys: committed offsets not readable (%s)", exc.args[0])
            return
        for tp in committed:
            self.reader.set_limit((tp.topic, tp.partition), max(tp.offset, 0))

    def poll(self, max_records: int = 5000) -> int:
        """Apply what the changelogs have (without waiting); returns records applied."""
        if not self._hosted:
            return 0
        self._refresh_limits()
        applied, _ = self.reader.read(max_records, 0)
        self.reader.watch()
        self.applied_records += applied
        return applied

    def checkpoint(self) -> None:
        for standby in self._hosted.values():
            self._write_checkpoint(standby, force=False)

    def _write_checkpoint(self, standby: _Standby, force: bool) -> None:
        offsets = {tp: p.position for tp, p in standby.parts.items() if p.position >= 0}
        if not force and all(
            off - standby.checkpointed.get(tp, 0) < CHECKPOINT_DELTA for tp, off in offsets.items()
        ):
            return
        for part in standby.parts.values():
            part.store.flush()
        write_checkpoint(standby.checkpoint_path, offsets)
        standby.checkpointed = dict(offsets)

    def close(self) -> None:
        for key in list(self._hosted):
            self._close(key)
        self.reader.close()

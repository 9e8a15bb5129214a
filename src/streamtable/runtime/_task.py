"""A stream task on Kafka: a :class:`TaskCore` plus its stores, offsets and lifecycle."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from streamtable.runtime._collector import KafkaRecordCollector
from streamtable.runtime._statedir import StateDirectory, read_checkpoint, write_checkpoint
from streamtable.runtime.config import StreamsConfig
from streamtable.runtime.state import TaskState, check_task_transition
from streamtable.state import CacheBudget, SerdeStore, open_engine
from streamtable.topology import StoreSpec, SubTopology, TaskCore, TaskHooks, Topology, build_store

log = logging.getLogger("streamtable.runtime.task")

TP = tuple[str, int]
CHECKPOINT_DELTA = 10_000  # as Kafka Streams' OFFSET_DELTA_THRESHOLD_FOR_CHECKPOINT


class StreamTask:
    """Task ``<sub-topology>_<partition>``: reads partition ``p`` of its sub-topology's topics.

    ``changelogs`` maps each store's changelog partition to the store that restores from it;
    ``source_changelogs`` are those whose changelog is an input topic (restored only up to the
    committed offset). ``consumed`` holds the next offset to commit per input topic.
    """

    def __init__(
        self,
        topology: Topology,
        sub: SubTopology,
        partition: int,
        config: StreamsConfig,
        state_dir: StateDirectory,
        collector: KafkaRecordCollector,
        budget: CacheBudget,
        global_stores: Mapping[str, Any],
        hooks: TaskHooks,
        *,
        metered: bool = False,
    ) -> None:
        self.task_id = f"{sub.id}_{partition}"
        self._metered = metered  # processors' stores count their operations (metrics kept)
        self.sub = sub
        self.partition = partition
        self.state = TaskState.CREATED
        self._dir = state_dir.task_dir(self.task_id)
        self._memory = state_dir.memory
        self._checkpoint_path = self._dir / ".checkpoint"
        app = config.application_id
        self.checkpoint = read_checkpoint(self._checkpoint_path)
        if config.exactly_once and not self.checkpoint:
            # Under EOS, state without a checkpoint may hold uncommitted writes: start over.
            state_dir.wipe(self.task_id)
        self.stores: dict[str, Any] = {}
        self.serde_stores: dict[str, SerdeStore] = {}
        self.specs: dict[str, StoreSpec] = {}
        self.changelogs: dict[TP, SerdeStore] = {}
        self.source_changelogs: set[TP] = set()
        self.persistent: set[TP] = set()
        for name in sub.stores:
            self._open_store(topology.stores[name], config, collector, budget)
        self.core = TaskCore(
            topology,
            sub,
            partition,
            app,
            self.stores,
            global_stores,
            collector,
            hooks,
        )
        self.topics = self.core.topics
        self.consumed: dict[str, int] = {}
        self.committed: dict[str, int] = {}
        # At least once, after a previous owner that did not close cleanly: per input topic, the
        # end offset when this task started running. Records below it may have been processed
        # before, their changes forwarded downstream from record caches that batched them; the
        # replay flushes the caches after every one of them, so that no change it retracts is
        # collapsed away (a retraction lost in a cache leaves a value downstream for good).
        self.replay_until: dict[str, int] = {}
        self.restored_to: dict[TP, int] = {}

    def _open_store(
        self,
        spec: StoreSpec,
        config: StreamsConfig,
        collector: KafkaRecordCollector,
        budget: CacheBudget,
    ) -> None:
        app, partition = config.application_id, self.partition
        persistent = spec.persistent(config.store_kind)
        engine = open_engine(persistent, self._dir / spec.name, self._memory)
        serde_store, store = build_store(
            spec, engine, app, partition, collector, budget, metered=self._metered
        )
        changelog = spec.changelog_topic(app)
        if changelog is not None:
            tp = (changelog, partition)
            self.changelogs[tp] = serde_store
            if spec.source_topic is not None:
                self.source_changelogs.add(tp)
            if persistent:
                self.persistent.add(tp)
        self.serde_stores[spec.name] = serde_store
        self.specs[spec.name] = spec
        self.stores[spec.name] = store

    def transition(self, new: TaskState) -> None:
        check_task_transition(self.task_id, self.state, new)
        log.debug("task %s: %s -> %s", self.task_id, self.state.name, new.name)
        self.state = new

    def restore_start(self, tp: TP) -> int | None:
        """Where restoring ``tp`` starts: the checkpointed offset, None for the beginning."""
        if tp not in self.persistent:
            return None
        return self.checkpoint.get(tp)

    def uncommitted(self) -> dict[str, int]:
        return {t: o for t, o in self.consumed.items() if self.committed.get(t) != o}

    def mark_committed(self, offsets: Mapping[str, int]) -> None:
        self.committed.update(offsets)

    def checkpoint_offsets(self, written: Mapping[TP, int]) -> dict[TP, int]:
        offsets: dict[TP, int] = {}
        for tp in self.persistent:
            if tp in self.source_changelogs:
                offset = self.committed.get(tp[0], self.restored_to.get(tp))
            else:
                offset = written.get(tp, self.restored_to.get(tp))
            if offset is not None:
                offsets[tp] = offset
        return offsets

    def write_checkpoint(self, written: Mapping[TP, int], force: bool = True) -> None:
        """Flush the engines and record how far they are. Unless ``force`` (closing), only
        when some changelog moved on by ``CHECKPOINT_DELTA`` records: a checkpoint per commit
        would flush RocksDB every commit, and restoring a few records more is cheap."""
        if not self.persistent:
            return
        offsets = self.checkpoint_offsets(written)
        if not force and all(
            offset - self.checkpoint.get(tp, 0) < CHECKPOINT_DELTA for tp, offset in offsets.items()
        ):
            return
        for store in self.serde_stores.values():
            store.flush()  # engine to disk before the checkpoint claims it
        self.checkpoint = offsets
        write_checkpoint(self._checkpoint_path, self.checkpoint)

    def delete_checkpoint(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._checkpoint_path.unlink()

    def close(self) -> None:
        if self.state is TaskState.CLOSED:
            return
        with contextlib.suppress(Exception):
            self.core.close()
        for store in self.serde_stores.values():
            store.close()
        self.transition(TaskState.CLOSED)

"""Restoring task state from changelogs before a task processes anything.

Each store's changelog partition is read from the checkpointed offset (or the beginning) up to
its end: the log end offset of an internal changelog, or the committed offset for a table whose
changelog is its input topic (what has been processed so far). The reading, including a
partition's completion only at its end and the replacement of a stuck consumer, is the
:class:`~._changelog.ChangelogReader`'s; this plans each task's partitions, tells when a task is
restored, counts, logs progress and tells a :class:`StateRestoreListener`. Restoration runs in
steps between polls of the main consumer, so a long restore does not stall the group protocol.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any, Protocol

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka import KafkaException as ClientException

from streamtable.errors import SerializationError
from streamtable.runtime._changelog import TP, ChangelogPartition, ChangelogReader
from streamtable.runtime._clients import cut_off, retry_transient
from streamtable.runtime._stuck import close_in_background
from streamtable.runtime._task import StreamTask
from streamtable.topology import StoreSpec

log = logging.getLogger("streamtable.runtime.restore")

PROGRESS_LOG_S = 2.0  # at most one progress line per this interval


class StateRestoreListener(Protocol):
    """Told about every changelog partition a task restores (Kafka Streams'
    ``StateRestoreListener``): ``on_restore_start`` with the offsets it restores from and up
    to, ``on_batch_restored`` after each batch applied, ``on_restore_end`` once it is done.
    Called on the processing thread: keep them short."""

    def on_restore_start(self, partition: TP, store: str, start: int, end: int) -> None: ...

    def on_batch_restored(self, partition: TP, store: str, batch_end: int, count: int) -> None: ...

    def on_restore_end(self, partition: TP, store: str, total: int) -> None: ...


class ChangelogRestorer:
    """Restores the tasks added to it; ``step()`` reads one batch and returns restored tasks."""

    def __init__(
        self,
        consumer: Consumer,
        timeout_s: float = 10.0,
        log_end: Consumer | None = None,
        deadline_s: float = 300.0,
        renew: Callable[[], Consumer] | None = None,
        renew_log_end: Callable[[], Consumer] | None = None,
        settings: dict[str, Any] | None = None,
        listener: StateRestoreListener | None = None,
    ) -> None:
        self.reader = ChangelogReader(consumer, "restore", renew, settings)
        self._renew_log_end = renew_log_end
        self._settings = settings
        # Asked for each changelog's end: the log end offset, which a read_committed consumer
        # does not report (its high watermark is the last stable offset). None: the restore
        # consumer itself (read_uncommitted) is asked.
        self._log_end = log_end
        self._timeout = timeout_s
        self._deadline_s = deadline_s  # how long a broker error is asked again
        self._listener = listener
        self._owner: dict[TP, StreamTask] = {}
        self._first: dict[TP, int] = {}  # the first offset to restore, per partition
        self._tasks: dict[str, StreamTask] = {}
        self._restoring: dict[str, set[TP]] = {}
        self.restored_records = 0
        self._total = 0
        self._done_records = 0
        self._started = 0.0
        self._last_log = 0.0

    @property
    def active(self) -> bool:
        return bool(self._tasks)

    @property
    def replacements(self) -> int:
        return self.reader.replacements

    @property
    def remaining(self) -> int:
        """Records still to restore in the current round."""
        return max(self._total - self._done_records, 0)

    def add(self, task: StreamTask, committed: Mapping[str, int]) -> None:
        """Plan the restore of ``task``; ``committed`` = the group's committed input offsets."""
        waiting: set[TP] = set()
        parts = []
        for tp, store in task.changelogs.items():
            low, high = retry_transient(
                partial(self._watermarks, TopicPartition(*tp)),
                f"offsets of {tp[0]}[{tp[1]}]",
                deadline_s=self._deadline_s,
            )
            end = max(committed.get(tp[0], 0), 0) if tp in task.source_changelogs else high
            start = task.restore_start(tp)
            first = low if start is None else max(start, low)
            task.restored_to[tp] = end
            if first >= end:
                continue
            check = None
            if tp in task.source_changelogs:
                check = partial(valid_source_record, task.specs[store.name])
            position = OFFSET_BEGINNING if start is None else first
            parts.append(ChangelogPartition(tp, store, position, end, check=check))
            self._owner[tp], self._first[tp] = task, first
            self._total += end - first
            waiting.add(tp)
            if self._listener is not None:
                self._listener.on_restore_start(tp, store.name, first, end)
        self._tasks[task.task_id] = task
        self._restoring[task.task_id] = waiting
        if not self._started:
            self._started = time.monotonic()
        self.reader.add(parts)

    def remove(self, task: StreamTask) -> None:
        tps = self._restoring.pop(task.task_id, set())
        for tp in tps:
            part = self.reader.parts.get(tp)
            if part is not None and tp not in self.reader.done:
                # Out of the round's total: an added task plans it afresh.
                first = self._first[tp]
                self._total -= (part.end or first) - first
                read = part.position - first if part.position >= 0 else 0
                self._done_records = max(self._done_records - read, 0)
            self._owner.pop(tp, None)
            self._first.pop(tp, None)
        self._tasks.pop(task.task_id, None)
        self.reader.remove(tps)

    def serve_idle(self) -> None:
        self.reader.serve_idle()

    def close(self) -> None:
        self.reader.close()
        if self._log_end is not None:
            self._log_end.close()

    def step(self, max_records: int = 10000) -> list[StreamTask]:
        """Restore up to about ``max_records``; return the tasks that are now fully restored."""
        if len(self.reader.done) < len(self.reader.parts):
            positions = {tp: p.position for tp, p in self.reader.parts.items()}
            read, finished = self.reader.read(max_records, 0.1)
            self.restored_records += read
            self._done_records += read
            self._tell(positions, finished)
            self._report()
            self.reader.watch()
        done = [self._tasks[t] for t, waiting in self._restoring.items() if not waiting]
        for task in done:
            tps = self._restoring.pop(task.task_id)
            del self._tasks[task.task_id]
            assert not tps
        if done:
            finished_tps = [tp for tp in self.reader.done if tp not in self._owner]
            for tp in finished_tps:
                self._first.pop(tp, None)
            self.reader.remove(finished_tps)
            if not self.reader.parts:
                self._report(final=True)
        return done

    def _tell(self, before: dict[TP, int], finished: list[TP]) -> None:
        """Per partition read: the listener's batch (and end) calls; completed partitions
        leave their task's waiting set."""
        listener = self._listener
        if listener is not None:
            for tp, part in self.reader.parts.items():
                moved = part.position - max(before.get(tp, 0), self._first[tp])
                if moved > 0:
                    listener.on_batch_restored(tp, part.store.name, part.position - 1, moved)
        for tp in finished:
            part = self.reader.parts[tp]
            if self._listener is not None:
                total = part.position - self._first[tp] if part.position >= 0 else 0
                self._listener.on_restore_end(tp, part.store.name, total)
            task = self._owner.pop(tp)
            self._restoring[task.task_id].discard(tp)

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """A changelog partition's offsets, from the log end consumer (or the restore consumer
        itself). When the request fails and that consumer has lost every broker while a new
        client reaches the cluster, it is replaced before the request is asked again."""
        asked = self.reader.consumer if self._log_end is None else self._log_end
        try:
            low, high = asked.get_watermark_offsets(tp, self._timeout, False)
            return low, high
        except ClientException:
            if self._settings is None or not cut_off(asked, self._settings):
                raise
            if asked is self._log_end and self._renew_log_end is not None:
                log.warning("replacing the log end consumer: it has lost every broker")
                close_in_background(asked, "log-end")
                self._log_end = self._renew_log_end()
            elif asked is self.reader.consumer:
                self.reader.replace()
            raise

    def _report(self, final: bool = False) -> None:
        now = time.monotonic()
        if not final and now - self._last_log < PROGRESS_LOG_S:
            return
        self._last_log = now
        elapsed = max(now - self._started, 1e-6)
        if self._total:  # nothing to restore (a first start): nothing to say
            log.info(
                "restore%s: %d/%d records (%.0f%%), %.0f records/s",
                " done" if final else "",
                self._done_records,
                self._total,
                100.0 * self._done_records / self._total,
                self._done_records / elapsed,
            )
        if final:
            self._total = self._done_records = 0
            self._started = 0.0


def valid_source_record(spec: StoreSpec, key: bytes, value: bytes | None) -> bool:
    """A record of an input topic restores only if it deserializes (bad ones went to the DLQ).
    Standby replicas apply the same rule to the input topics they tail."""
    try:
        spec.key_serde.deserialize(key)
        if value is not None:
            spec.value_serde.deserialize(value)
    except SerializationError:
        return False
    except Exception:
        return False
    return True

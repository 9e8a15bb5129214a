"""Restoring task state from changelogs before a task processes anything.

A group-less consumer reads each store's changelog partition from the checkpointed offset (or
the beginning) up to the end: the high watermark of an internal changelog, or the committed
offset for a table whose changelog is its input topic (what has been processed so far).
A partition is done only once the consumer's position reaches that end. Under exactly_once_v2
the consumer reads read_committed and reports end-of-partition at the last stable offset,
which an open transaction holds back (a killed instance's, until it is fenced or times out)
while committed transactions of the task's later owners may already follow it: finishing
there would drop their effects, though the group's committed offsets include them.
Restoration runs in steps between polls of the main consumer, so a long restore does not stall
the group protocol.

A restore consumer that stops fetching while the broker holds records for it is replaced by a
new one at the same positions (see ``_stuck.py``).
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka import KafkaError as ClientError
from confluent_kafka import KafkaException as ClientException

from streamtable.errors import KafkaError, SerializationError
from streamtable.runtime._clients import cut_off, retry_transient
from streamtable.runtime._stuck import STALL_S, close_in_background, stable_offsets
from streamtable.runtime._task import StreamTask
from streamtable.state import SerdeStore
from streamtable.topology import StoreSpec

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

log = logging.getLogger("streamtable.runtime.restore")

TP = tuple[str, int]

# A changelog partition whose restore has not moved for this long is named in a warning, with
# what the restore consumer knows of its last stable offset: an open transaction (a killed
# instance's, until it times out) holds that offset back; past it, the consumer itself is stuck
# and is replaced (at most once per this interval).
STALL_WARN_S = STALL_S


@dataclass
class _Pending:
    task: StreamTask
    store: SerdeStore
    spec: StoreSpec
    validate: bool
    position: int  # next offset to read (OFFSET_BEGINNING before the first record)
    end: int
    first: int  # the first offset to restore: ``end - first`` counts in the round's total
    moved: float  # time.monotonic() of the last record read (or of the assignment)


class ChangelogRestorer:
    """Owns the restore consumer; ``step()`` applies one batch and returns finished tasks."""

    def __init__(
        self,
        consumer: Consumer,
        timeout_s: float = 10.0,
        log_end: Consumer | None = None,
        deadline_s: float = 300.0,
        renew: Callable[[], Consumer] | None = None,
        renew_log_end: Callable[[], Consumer] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._consumer = consumer
        # Make a new restore (log end) consumer when this one is stuck (None: only warn); the
        # client settings let a failed offsets request tell a client cut off from its brokers
        # (_clients.cut_off) from a cluster out of reach.
        self._renew = renew
        self._renew_log_end = renew_log_end
        self._settings = settings
        self.replacements = 0
        # Asked for each changelog's end: the log end offset, which a read_committed consumer
        # does not report (its high watermark is the last stable offset). None: the restore
        # consumer itself (read_uncommitted) is asked.
        self._log_end = log_end
        self._timeout = timeout_s
        self._deadline_s = deadline_s  # how long a broker error is asked again
        self._pending: dict[TP, _Pending] = {}
        self._tasks: dict[str, StreamTask] = {}
        self._restoring: dict[str, set[TP]] = {}
        self.restored_records = 0
        self._total = 0
        self._done_records = 0
        self._started = 0.0
        self._last_log = 0.0
        self._bar: Progress | None = None
        self._bar_task: TaskID | None = None
        self._stall_warned = 0.0

    @property
    def active(self) -> bool:
        return bool(self._tasks)

    @property
    def remaining(self) -> int:
        """Records still to restore in the current round."""
        return max(self._total - self._done_records, 0)

    def add(self, task: StreamTask, committed: Mapping[str, int]) -> None:
        """Plan the restore of ``task``; ``committed`` = the group's committed input offsets."""
        waiting: set[TP] = set()
        for tp, store in task.changelogs.items():
            topic, partition = tp
            ends = TopicPartition(topic, partition)
            low, high = retry_transient(
                partial(self._watermarks, ends),
                f"offsets of {topic}[{partition}]",
                deadline_s=self._deadline_s,
            )
            end = max(committed.get(topic, 0), 0) if tp in task.source_changelogs else high
            start = task.restore_start(tp)
            first = low if start is None else max(start, low)
            task.restored_to[tp] = end
            if first >= end:
                continue
            spec = task.specs[store.name]
            self._pending[tp] = _Pending(
                task,
                store,
                spec,
                tp in task.source_changelogs,
                OFFSET_BEGINNING if start is None else first,
                end,
                first,
                time.monotonic(),
            )
            self._total += end - first
            waiting.add(tp)
        self._tasks[task.task_id] = task
        self._restoring[task.task_id] = waiting
        if not self._started:
            self._started = time.monotonic()
        self._assign()

    def remove(self, task: StreamTask) -> None:
        for tp in self._restoring.pop(task.task_id, set()):
            pend = self._pending.pop(tp, None)
            if pend is not None:  # out of the round's total: an added task plans it afresh
                self._total -= pend.end - pend.first
                read = pend.position - pend.first if pend.position >= 0 else 0
                self._done_records = max(self._done_records - read, 0)
        self._tasks.pop(task.task_id, None)
        self._assign()

    def serve_idle(self) -> None:
        """While nothing restores: serve the idle restore consumer's events (its log lines,
        which librdkafka queues until the client is polled). Assigned nothing, it reads
        nothing."""
        self._consumer.consume(num_messages=1, timeout=0)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        self._consumer.close()
        if self._log_end is not None:
            self._log_end.close()

    def _assign(self) -> None:
        self._consumer.assign(
            [TopicPartition(t, p, pend.position) for (t, p), pend in self._pending.items()]
        )

    def _finish(self, tp: TP) -> None:
        pend = self._pending.pop(tp)
        self._restoring[pend.task.task_id].discard(tp)

    def step(self, max_records: int = 10000) -> list[StreamTask]:
        """Restore up to about ``max_records``; return the tasks that are now fully restored."""
        if self._pending:
            self._read(max_records)
            self._warn_stalled()
        done = [self._tasks[t] for t, waiting in self._restoring.items() if not waiting]
        for task in done:
            del self._restoring[task.task_id]
            del self._tasks[task.task_id]
        if done:
            if self._pending:
                self._assign()
            else:
                self._consumer.assign([])
                self._report(final=True)
        return done

    def _read(self, max_records: int) -> None:
        batches: dict[TP, list[tuple[bytes, bytes | None, int]]] = {}
        finished: set[TP] = set()
        pending = self._pending
        consume = self._consumer.consume
        read = 0
        while read < max_records and len(finished) < len(pending):
            messages = consume(num_messages=1000, timeout=0.1)
            if not messages:
                break
            now = time.monotonic()
            # One partition's messages come in runs: look its state up once per run.
            run: TP | None = None
            pend: _Pending | None = None
            batch: list[tuple[bytes, bytes | None, int]] = []
            validate: Callable[[bytes, bytes | None], bool] | None = None
            for msg in messages:
                topic, partition = msg.topic(), msg.partition()
                if topic is None or partition is None:
                    continue
                error = msg.error()
                if error is not None:
                    if error.code() == ClientError._PARTITION_EOF:
                        eof = pending.get((topic, partition))
                        # read_committed reports EOF at the last stable offset: below the end
                        # while a transaction is open (a killed instance's, until it is fenced
                        # or times out), and committed records may follow it. Done only at end.
                        if eof is not None and max(msg.offset() or 0, eof.position) >= eof.end:
                            finished.add((topic, partition))
                        continue
                    raise KafkaError(f"restoring {topic}[{partition}]: {error}")
                tp = (topic, partition)
                if tp != run:
                    run = tp
                    pend = None if tp in finished else pending.get(tp)
                    if pend is not None:
                        batch = batches.setdefault(tp, [])
                        validate = (
                            partial(valid_source_record, pend.spec) if pend.validate else None
                        )
                if pend is None:
                    continue
                offset = msg.offset()
                if offset is None:
                    continue
                if offset >= pend.end:
                    finished.add(tp)
                    pend = None
                    continue
                pend.position = offset + 1
                pend.moved = now
                read += 1
                key = msg.key()
                if key is not None:
                    value = msg.value()
                    if validate is None or validate(key, value):
                        batch.append((key, value, msg.timestamp()[1]))
                if pend.position >= pend.end:
                    finished.add(tp)
                    pend = None
        for btp, records in batches.items():
            if records:
                pending[btp].store.restore_batch(records)
        self.restored_records += read
        self._done_records += read
        for ftp in finished:
            if ftp in pending:
                self._finish(ftp)
        self._report()

    def _warn_stalled(self) -> None:
        """Name the partitions whose restore has not moved for :data:`STALL_WARN_S`, at most
        once per that interval, with the broker's last stable offset (under at_least_once, its
        high watermark): below the end, an open transaction holds the restore back; at the end,
        the restore consumer is not fetching. A consumer that has not fetched up to that offset
        (or cannot even ask for it) is stuck: it is replaced, when the restorer can renew it."""
        now = time.monotonic()
        if now - self._stall_warned < STALL_WARN_S:
            return
        stalled = [(tp, p) for tp, p in self._pending.items() if now - p.moved >= STALL_WARN_S]
        if not stalled:
            return
        self._stall_warned = now
        shown = sorted(stalled)[:10]
        stuck, stable = stable_offsets(
            self._consumer, {tp: p.position for tp, p in shown}, self._settings
        )
        parts = []
        for (topic, partition), pend in shown:
            at = "beginning" if pend.position < 0 else pend.position
            parts.append(
                f"{topic}[{partition}] at {at} of {pend.end} (last stable offset: "
                f"{stable.get((topic, partition), 'not asked')}, {now - pend.moved:.0f}s "
                "without a record)"
            )
        log.warning(
            "restore has not moved on %d changelog partition(s): %s%s",
            len(stalled),
            "; ".join(parts),
            "" if len(stalled) <= 10 else "; ...",
        )
        if stuck and self._renew is not None:
            self._replace_consumer()

    def _watermarks(self, tp: TopicPartition) -> tuple[int, int]:
        """A changelog partition's offsets, from the log end consumer (or the restore consumer
        itself). When the request fails and that consumer has lost every broker while a new
        client reaches the cluster, it is replaced before the request is asked again."""
        asked = self._consumer if self._log_end is None else self._log_end
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
            elif asked is self._consumer and self._renew is not None:
                self._replace_consumer()
            raise

    def _replace_consumer(self) -> None:
        """A new restore consumer, assigned at the positions restored so far; the stuck one is
        closed on a thread of its own (a wedged client may not close promptly)."""
        old = self._consumer
        assert self._renew is not None
        self._consumer = self._renew()
        self._assign()
        self.replacements += 1
        log.warning(
            "replacing the restore consumer: it has not fetched up to the last stable offset "
            "for %.0fs, or has lost every broker; the new one goes on from the positions "
            "restored so far",
            STALL_WARN_S,
        )
        close_in_background(old, "restore")

    def _report(self, final: bool = False) -> None:
        if self._bar is None and not final and self._total and sys.stderr.isatty():
            self._bar = _progress_bar()  # on a terminal, when rich is installed; logs anyway
            if self._bar is not None:
                self._bar_task = self._bar.add_task("restoring state", total=self._total)
                self._bar.start()
        if self._bar is not None and self._bar_task is not None:
            self._bar.update(self._bar_task, completed=self._done_records, total=self._total)
            if final:
                self._bar.stop()
                self._bar = None
                self._bar_task = None
        now = time.monotonic()
        if not final and now - self._last_log < 2.0:
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


def _progress_bar() -> Progress | None:
    """A transient rich progress bar, or None when rich is not installed (it is optional: the
    library does not depend on it; the restore progress is logged either way)."""
    progress = _rich_progress()
    return None if progress is None else progress(transient=True)


@cache
def _rich_progress() -> type[Progress] | None:
    try:
        from rich.progress import Progress
    except ImportError:
        return None
    return Progress


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

"""``ChangelogReader``: the one reader of changelogs, for active restore, standbys and global
tables.

It owns one assign-only consumer and reads each registered partition into its store
(``restore_batch``: applied without logging), configured per partition: where to start, an end
at which it completes (a restore) or none (it tails), a limit it may not read past until the
limit is raised (a standby of a table whose changelog is its input topic: the group's committed
offset), and a check that drops records that do not deserialize (an input topic's bad records
went to the dead-letter topic, not into the active task's store).

Under exactly_once_v2 the consumer reads read_committed and reports end-of-partition at the
last stable offset, which an open transaction holds back (a killed instance's, until it is
fenced or times out) while committed transactions may already follow it: a partition completes
only once its position reaches its end, never at an end-of-partition below it.

A partition that has handed nothing over for :data:`STALL_S` has its consumer looked at: one
that has not fetched up to the broker's last stable offset, or has lost every broker while a
new client reaches the cluster, is stuck and is replaced by a new one at the positions read so
far (see ``_stuck.py``); a partition with an end that has not moved is named in a warning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from confluent_kafka import KafkaError as ClientError

from streamtable.errors import KafkaError
from streamtable.runtime._stuck import STALL_S, close_in_background, stable_offsets
from streamtable.state import SerdeStore

log = logging.getLogger("streamtable.runtime.changelog")

TP = tuple[str, int]
Record = tuple[bytes, bytes | None, int]  # key, value (None: a tombstone), timestamp
Check = Callable[[bytes, bytes | None], bool]

# How many idle partitions one look at the consumer asks about (in turn, so that every
# partition is asked about over time): one short broker call each.
CHECKED_PER_LOOK = 10


@dataclass(eq=False)
class ChangelogPartition:
    """One partition to read into ``store``. ``position`` is the next offset to read
    (``OFFSET_BEGINNING`` before the first record); ``end``: it completes there (None: it
    tails); ``limit``: it is not read past this offset until :meth:`ChangelogReader.set_limit`
    raises it; ``check``: only the records it accepts are applied."""

    tp: TP
    store: SerdeStore
    position: int = OFFSET_BEGINNING
    end: int | None = None
    limit: int | None = None
    check: Check | None = None
    moved: float = field(default_factory=time.monotonic)  # of the last record read
    paused: bool = False


class ChangelogReader:
    """Reads the partitions added to it through ``consumer``, a batch per :meth:`read`;
    ``role`` names it in logs (restore, standby, global). ``renew`` makes the consumer that
    replaces a stuck one (None: a stuck one is only named in a warning); ``settings`` let a
    failed offsets request tell a client cut off from its brokers from a cluster out of reach
    (:func:`_clients.cut_off`)."""

    def __init__(
        self,
        consumer: Consumer,
        role: str,
        renew: Callable[[], Consumer] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        self._renew = renew
        self.role = role
        self._settings = settings
        self.consumer = consumer
        self.parts: dict[TP, ChangelogPartition] = {}
        self.done: set[TP] = set()  # completed, until removed
        self.replacements = 0
        self._looked = 0.0  # a first look at once (only partitions idle for STALL_S count)
        self._turn = 0

    # -- what is read ----------------------------------------------------------------------
    def add(self, parts: Iterable[ChangelogPartition]) -> None:
        replaced = []
        for part in parts:
            old = self.parts.get(part.tp)
            if old is not None:
                replaced.append(old)
            self.parts[part.tp] = part
            self.done.discard(part.tp)
        self._assign(replaced)

    def remove(self, tps: Iterable[TP]) -> None:
        removed = []
        for tp in tps:
            part = self.parts.pop(tp, None)
            if part is not None:
                removed.append(part)
            self.done.discard(tp)
        self._assign(removed)

    def set_limit(self, tp: TP, limit: int) -> None:
        """Let ``tp`` be read up to ``limit``; a partition paused at its old limit resumes."""
        part = self.parts[tp]
        part.limit = limit
        if part.paused and (part.position < 0 or part.position < limit):
            self.consumer.resume([TopicPartition(*tp)])
            part.paused = False
            part.moved = time.monotonic()

    def _assign(self, dropped: Iterable[ChangelogPartition] = ()) -> None:
        # librdkafka keeps a partition paused across assign() until it is resumed (see
        # _holds): one paused at its limit would stay paused, unknown to the reader, and hand
        # nothing over (standbys of chaos seed 888458, stuck until the consumer was replaced).
        paused = [TopicPartition(*p.tp) for p in (*self.parts.values(), *dropped) if p.paused]
        if paused:
            self.consumer.resume(paused)
        self.consumer.assign(
            [TopicPartition(t, p, part.position) for (t, p), part in self.parts.items()
             if (t, p) not in self.done]
        )  # fmt: skip
        for part in self.parts.values():
            part.paused = False  # an assignment fetches every partition again

    def serve_idle(self) -> None:
        """Serve the idle consumer's events (its log lines, which librdkafka queues until the
        client is polled). Assigned nothing, it reads nothing."""
        self.consumer.consume(num_messages=1, timeout=0)

    # -- reading ---------------------------------------------------------------------------
    def read(self, max_records: int, timeout_s: float) -> tuple[int, list[TP]]:
        """Apply up to about ``max_records``, waiting up to ``timeout_s`` per fetch; returns
        the records read and the partitions completed now."""
        batches: dict[TP, list[Record]] = {}
        finished: list[TP] = []
        read = 0
        while read < max_records and len(self.done) < len(self.parts):
            messages = self.consumer.consume(num_messages=1000, timeout=timeout_s)
            if not messages:
                break
            read += self._apply(messages, batches, finished)
        for tp, records in batches.items():
            if records:
                self.parts[tp].store.restore_batch(records)
        return read, finished

    def _apply(
        self, messages: list[Message], batches: dict[TP, list[Record]], finished: list[TP]
    ) -> int:
        now = time.monotonic()
        read = 0
        # One partition's messages come in runs: look its state up once per run.
        run: TP | None = None
        part: ChangelogPartition | None = None
        batch: list[Record] = []
        for msg in messages:
            topic, partition = msg.topic(), msg.partition()
            if topic is None or partition is None:
                continue
            tp = (topic, partition)
            if msg.error() is not None:
                self._on_error(msg, tp, finished)
                run = None  # the partition may have completed
                continue
            if tp != run:
                run = tp
                part = None if tp in self.done else self.parts.get(tp)
                if part is not None:
                    if part.paused:
                        part = None
                    else:
                        batch = batches.setdefault(tp, [])
            if part is None:
                continue
            offset = msg.offset()
            if offset is None:
                continue
            if part.end is not None and offset >= part.end:
                self._complete(part, finished)
                part = None
                continue
            if part.limit is not None and offset >= part.limit:
                # Past what may be read: wait here until the limit is raised.
                self.consumer.seek(TopicPartition(topic, partition, offset))
                self.consumer.pause([TopicPartition(topic, partition)])
                part.paused = True
                part = None
                continue
            part.position = offset + 1
            part.moved = now
            read += 1
            key = msg.key()
            if key is not None:
                value = msg.value()
                if part.check is None or part.check(key, value):
                    batch.append((key, value, msg.timestamp()[1]))
            if part.end is not None and part.position >= part.end:
                self._complete(part, finished)
                part = None
        return read

    def _on_error(self, msg: Message, tp: TP, finished: list[TP]) -> None:
        error = msg.error()
        assert error is not None
        part = None if tp in self.done else self.parts.get(tp)
        if error.code() == ClientError._PARTITION_EOF:
            # read_committed reports EOF at the last stable offset: below the end while a
            # transaction is open, and committed records may follow it. Done only at the end.
            end = None if part is None else part.end
            if (
                part is not None
                and end is not None
                and max(msg.offset() or 0, part.position) >= end
            ):
                self._complete(part, finished)
            return
        if part is not None and part.end is not None:
            raise KafkaError(f"restoring {tp[0]}[{tp[1]}]: {error}")
        log.warning("%s consumer: %s", self.role, error)

    def _complete(self, part: ChangelogPartition, finished: list[TP]) -> None:
        if part.tp not in self.done:
            self.done.add(part.tp)
            finished.append(part.tp)

    # -- a stuck consumer ------------------------------------------------------------------
    def watch(self) -> None:
        """Every :data:`STALL_S`: look at partitions that handed nothing over for that long
        (up to :data:`CHECKED_PER_LOOK`, in turn); name those with an end in a warning; replace
        the consumer if it is stuck."""
        now = time.monotonic()
        if now - self._looked < STALL_S:
            return
        self._looked = now
        idle = sorted(
            tp
            for tp, p in self.parts.items()
            if tp not in self.done and not p.paused and now - p.moved >= STALL_S
        )
        if not idle:
            return
        turn = self._turn % len(idle)
        self._turn += CHECKED_PER_LOOK
        asked = (idle[turn:] + idle[:turn])[:CHECKED_PER_LOOK]
        stuck, stable = stable_offsets(
            self.consumer, {tp: self.parts[tp].position for tp in asked}, self._settings
        )
        ending = [tp for tp in asked if self.parts[tp].end is not None]
        if ending:
            self._warn(ending, len(idle), stable, now)
        if stuck and self._renew is not None:
            self.replace(stable)

    def _warn(self, shown: list[TP], stalled: int, stable: dict[TP, str], now: float) -> None:
        parts = []
        for tp in shown:
            part = self.parts[tp]
            parts.append(
                f"{tp[0]}[{tp[1]}] at {_at(part.position)} of {part.end} (last stable offset: "
                f"{stable.get(tp, 'not asked')}, {now - part.moved:.0f}s without a record)"
            )
        log.warning(
            "%s has not moved on %d changelog partition(s): %s%s",
            self.role,
            stalled,
            "; ".join(parts),
            "" if stalled <= len(shown) else "; ...",
        )

    def replace(self, stable: dict[TP, str] | None = None) -> None:
        """A new consumer at the positions read so far; the stuck one is closed on a thread
        of its own (a wedged client may not close promptly). ``stable``: the last stable offset
        of the partitions it was judged on (or why it could not be read), for the log."""
        assert self._renew is not None
        old = self.consumer
        self.consumer = self._renew()
        for part in self.parts.values():
            part.paused = False  # the new consumer has paused nothing
        self._assign()
        self.replacements += 1
        where = [
            f"{t}[{p}] at {_at(self.parts[(t, p)].position)}: {offset}"
            for (t, p), offset in (stable or {}).items()
            if (t, p) in self.parts
        ]
        log.warning(
            "replacing the %s consumer: it has not fetched up to the last stable offset for "
            "%.0fs, or has lost every broker (%s); the new one goes on from the positions read "
            "so far",
            self.role,
            STALL_S,
            "; ".join(where) or "its offset requests fail",
        )
        close_in_background(old, self.role)

    def close(self) -> None:
        self.consumer.close()


def _at(offset: int) -> str:
    return "beginning" if offset < 0 else str(offset)

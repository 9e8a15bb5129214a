"""A progress bar of the state restore on a terminal (``us-shareholders run``).

The library only tells (:class:`streamtable.StateRestoreListener`) and logs; drawing is the
service's: a transient rich bar over every changelog partition being restored, shown while a
restore runs and only when stderr is a terminal.
"""

from __future__ import annotations

import sys
import threading

from rich.progress import Progress, TaskID

Partition = tuple[str, int]


class RestoreProgress:
    """One bar for all partitions: their records to restore and those restored so far."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        self._total = 0
        self._done = 0
        self._open: set[Partition] = set()

    def on_restore_start(self, partition: Partition, store: str, start: int, end: int) -> None:
        with self._lock:
            if self._bar is None:
                self._bar = Progress(transient=True)
                self._task = self._bar.add_task("restoring state", total=0)
                self._bar.start()
            self._open.add(partition)
            self._total += max(end - start, 0)
            self._show()

    def on_batch_restored(
        self, partition: Partition, store: str, batch_end: int, count: int
    ) -> None:
        with self._lock:
            self._done += count
            self._show()

    def on_restore_end(self, partition: Partition, store: str, total: int) -> None:
        with self._lock:
            self._open.discard(partition)
            if not self._open and self._bar is not None:
                self._bar.stop()
                self._bar = self._task = None
                self._total = self._done = 0

    def _show(self) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=self._done, total=self._total)


def restore_progress() -> RestoreProgress | None:
    """A :class:`RestoreProgress` when stderr is a terminal, else None (logs say it anyway)."""
    return RestoreProgress() if sys.stderr.isatty() else None

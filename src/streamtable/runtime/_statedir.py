"""The state directory: ``<state_dir>/<application_id>/`` with a lock file and a folder per task.

The lock (``fcntl.flock`` on ``.lock``) keeps a second process, or a second app in the same
process, from using the same state at once: it fails with :class:`StateDirLocked`.
Each task folder holds its stores and ``.checkpoint``: JSON ``{"topic-partition": offset}``,
the changelog offset each store is known to be restored up to.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import IO

from streamtable.errors import StateDirLocked
from streamtable.runtime.config import StreamsConfig
from streamtable.state import RocksDBMemory

TopicPartitionKey = tuple[str, int]


class StateDirectory:
    """One instance's local state: its directory, lock, and the RocksDB memory budget that
    every store opened under it shares (``memory``; None: RocksDB's defaults per store)."""

    def __init__(
        self, root: Path, application_id: str, memory: RocksDBMemory | None = None
    ) -> None:
        self.app_dir = root / application_id
        self.memory = memory
        self._lock_file: IO[str] | None = None

    @classmethod
    def of(cls, config: StreamsConfig) -> StateDirectory:
        """The state directory ``config`` names, with its RocksDB memory budget."""
        memory = config.rocksdb_memory_bytes
        budget = None if memory is None else RocksDBMemory(memory)
        return cls(config.state_dir, config.application_id, budget)

    def lock(self) -> None:
        self.app_dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.app_dir / ".lock", "a+")  # noqa: SIM115 - held until unlock()
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise StateDirLocked(
                f"state directory {self.app_dir} is locked by another process (or another "
                "StreamsApp in this one); give each instance its own state_dir"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._lock_file = handle

    def unlock(self) -> None:
        if self._lock_file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def process_id(self) -> uuid.UUID:
        """This state directory's process id (``.process-id``), made on first use: a restart
        on the same directory keeps it (the transactional id derives from it)."""
        path = self.app_dir / ".process-id"
        try:
            return uuid.UUID(path.read_text().strip())
        except (FileNotFoundError, ValueError):
            made = uuid.uuid4()
            self.app_dir.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(f"{made}\n")
            os.replace(tmp, path)
            return made

    def task_dir(self, task_id: str) -> Path:
        return self.app_dir / task_id

    def wipe(self, task_id: str) -> None:
        shutil.rmtree(self.task_dir(task_id), ignore_errors=True)


def read_checkpoint(path: Path) -> dict[TopicPartitionKey, int]:
    try:
        raw = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    result: dict[TopicPartitionKey, int] = {}
    for name, offset in raw.items():
        topic, _, partition = name.rpartition("-")
        result[(topic, int(partition))] = int(offset)
    return result


def write_checkpoint(path: Path, offsets: dict[TopicPartitionKey, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({f"{t}-{p}": o for (t, p), o in sorted(offsets.items())}))
    os.replace(tmp, path)

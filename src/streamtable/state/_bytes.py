"""Byte-level storage engines: the bottom of every store stack, and the one place that opens
one (:func:`open_engine`).

Keys and values are bytes; order is the unsigned lexicographic order of key bytes, as in
RocksDB and Kafka Streams. A write is ``(key, value bytes or None, timestamp)``, as a changelog
record is; the engine stores ``8-byte big-endian timestamp + value bytes`` (like Kafka Streams'
timestamped stores) and reads return that stored form.
"""

from __future__ import annotations

import bisect
import shutil
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from rocksdict import Options, Rdict, WriteBatch, WriteOptions

if TYPE_CHECKING:
    from streamtable.state._memory import RocksDBMemory

_TS = struct.Struct(">q")
TIMESTAMP_SIZE = _TS.size
"""Bytes of the timestamp in front of each stored value."""

Write = tuple[bytes, "bytes | None", int]
"""``(key bytes, value bytes or None to delete, timestamp)``: one write, or one changelog
record."""


def stored_timestamp(stored: bytes) -> int:
    """The timestamp of a stored value."""
    timestamp: int = _TS.unpack_from(stored)[0]
    return timestamp


class BytesStore(Protocol):
    """What a storage engine (or the changelogging layer over it) offers to the layers above."""

    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    def put(self, key: bytes, value: bytes | None, timestamp: int) -> None: ...

    def write_batch(self, items: Iterable[Write]) -> None: ...

    def range(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]: ...

    def approximate_num_entries(self) -> int: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class MemoryBytesStore:
    """A dict plus a lazily rebuilt sorted key index for range scans."""

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._sorted: list[bytes] | None = None

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        get = self._data.get
        return [get(k) for k in keys]

    def put(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        data = self._data
        if value is None:
            if data.pop(key, None) is not None:
                self._sorted = None
        else:
            if key not in data:
                self._sorted = None
            data[key] = _TS.pack(timestamp) + value

    def write_batch(self, items: Iterable[Write]) -> None:
        put = self.put
        for key, value, timestamp in items:
            put(key, value, timestamp)

    def range(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        if self._sorted is None:
            self._sorted = sorted(self._data)
        keys = self._sorted
        start = 0 if lo is None else bisect.bisect_left(keys, lo)
        stop = len(keys) if hi is None else bisect.bisect_right(keys, hi)
        data = self._data
        for key in keys[start:stop]:
            value = data.get(key)
            if value is not None:
                yield key, value

    def approximate_num_entries(self) -> int:
        return len(self._data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class RocksDBBytesStore:
    """RocksDB through rocksdict. Writes from a commit go in one ``WriteBatch``.

    Writes skip RocksDB's write-ahead log, as Kafka Streams' do: the changelog is the log.
    What a crash loses from the memtables is restored from the changelog, because a checkpoint
    is written only after :meth:`flush` has put the memtables on disk (and under exactly-once,
    a store without a checkpoint is wiped and restored from scratch).
    """

    def __init__(self, path: Path, memory: RocksDBMemory | None = None) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        if memory is not None:
            memory.apply(options)
        self._memory = memory  # the shared cache must outlive the DB
        self._path = path
        self._db = Rdict(str(path), options=options)
        write_options = WriteOptions()
        write_options.disable_wal = True  # type: ignore[method-assign, assignment]  # a property; the stub says method
        self._db.set_write_options(write_options)
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)
        return value

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        """One multi-get for many keys (the cache reads old values at flush this way)."""
        if not keys:
            return []
        values: list[bytes | None] = self._db.get(keys)  # type: ignore[arg-type, assignment]
        return values

    def put(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        if value is None:
            self._db.delete(key)
        else:
            self._db.put(key, _TS.pack(timestamp) + value)

    def write_batch(self, items: Iterable[Write]) -> None:
        batch = WriteBatch(raw_mode=True)
        pack = _TS.pack
        count = 0
        for key, value, timestamp in items:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, pack(timestamp) + value)
            count += 1
        if count:
            self._db.write(batch)

    def range(self, lo: bytes | None, hi: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        # rocksdict's items() iterates in native code: about twice as fast as stepping a raw
        # iterator from Python (key(), value(), next() per entry).
        items: Iterator[tuple[bytes, bytes]] = self._db.items(from_key=lo)  # type: ignore[assignment]
        if hi is None:
            yield from items
            return
        for key, value in items:
            if key > hi:
                return
            yield key, value

    def approximate_num_entries(self) -> int:
        raw = self._db.property_int_value("rocksdb.estimate-num-keys")
        return int(raw or 0)

    def flush(self) -> None:
        self._db.flush()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._db.close()

    def destroy(self) -> None:
        """Close and delete the files (used when local state must be wiped)."""
        self.close()
        shutil.rmtree(self._path, ignore_errors=True)


def open_engine(
    persistent: bool, directory: Path | None = None, memory: RocksDBMemory | None = None
) -> BytesStore:
    """The storage engine of one store: RocksDB under ``directory`` when ``persistent`` (drawing
    on the instance's shared ``memory`` budget when given), else in memory. The runtime (tasks,
    standbys, global stores) and the test driver open every engine here."""
    if not persistent:
        return MemoryBytesStore()
    if directory is None:
        raise ValueError("a persistent (RocksDB) store needs a directory")
    return RocksDBBytesStore(directory, memory)

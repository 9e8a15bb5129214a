"""Byte-level storage engines: the bottom of every store stack.

Keys and values are bytes; order is the unsigned lexicographic order of key bytes, as in
RocksDB and Kafka Streams. A value here is ``8-byte big-endian timestamp + serialized value``.
"""

from __future__ import annotations

import bisect
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

from rocksdict import Options, Rdict, WriteBatch, WriteOptions


class BytesStore(Protocol):
    """What a storage engine offers to the layers above it."""

    def get(self, key: bytes) -> bytes | None: ...

    def get_many(self, keys: list[bytes]) -> list[bytes | None]: ...

    def put(self, key: bytes, value: bytes | None) -> None: ...

    def write_batch(self, items: Iterable[tuple[bytes, bytes | None]]) -> None: ...

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

    def put(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            if self._data.pop(key, None) is not None:
                self._sorted = None
        else:
            if key not in self._data:
                self._sorted = None
            self._data[key] = value

    def write_batch(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        for key, value in items:
            self.put(key, value)

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

    def __init__(self, path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        options = Options(raw_mode=True)
        options.create_if_missing(True)
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

    def put(self, key: bytes, value: bytes | None) -> None:
        if value is None:
            self._db.delete(key)
        else:
            self._db.put(key, value)

    def write_batch(self, items: Iterable[tuple[bytes, bytes | None]]) -> None:
        batch = WriteBatch(raw_mode=True)
        count = 0
        for key, value in items:
            if value is None:
                batch.delete(key)
            else:
                batch.put(key, value)
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

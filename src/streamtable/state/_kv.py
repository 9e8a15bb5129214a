"""Typed key-value stores: the serde layer over a byte store (an engine, or the changelogging
layer over one).

A stored value is ``(value, timestamp)``; the engine holds ``8-byte big-endian timestamp + value
bytes`` (like Kafka Streams' timestamped stores). Iteration order is the order of serialized key
bytes, so range scans agree with Kafka Streams for the same serdes.

Every readable store also offers raw entries (:data:`RawEntry`: key bytes and the value as
stored); a reader decodes them with :func:`decode_entries` and the decoders it chooses (the
query server serves a JSON store's values as stored, without decoding them).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, Protocol

from streamtable.serde import Serde
from streamtable.state._bytes import TIMESTAMP_SIZE, BytesStore, Write, stored_timestamp
from streamtable.state._changelog import ChangeLoggingBytesStore


class Decoded(tuple[Any, Any]):
    """``(key, value)`` already decoded: a record cache's dirty entry in a raw scan."""

    __slots__ = ()


RawEntry = tuple[bytes, "bytes | Decoded"]
"""``(key bytes, stored bytes)`` as the engine holds it (timestamp first), or ``(key bytes,
Decoded((key, value)))`` from a record cache: what a scan merges by key bytes before it decodes
only the entries it keeps."""


class ReadableStore(Protocol):
    """The read side every store and view offers."""

    name: str

    def get(self, key: Any) -> Any: ...

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None: ...

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]: ...

    def range_entries(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]: ...

    def raw_range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[RawEntry]: ...

    def all(self) -> Iterator[tuple[Any, Any]]: ...

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]: ...

    def approximate_num_entries(self) -> int: ...


class KeyValueStore(ReadableStore, Protocol):
    """A writable store, as processors see it."""

    def put(self, key: Any, value: Any, timestamp: int) -> None: ...

    def delete(self, key: Any) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def decode_entries(
    entries: Iterable[RawEntry],
    key_decoder: Callable[[bytes], Any],
    value_decoder: Callable[[bytes], Any],
) -> Iterator[tuple[bytes, Any, Any]]:
    """``(key bytes, key, value)`` of raw entries: stored values lose their timestamp and go
    through ``value_decoder`` (a serde's ``deserialize``, or what a reader prefers); a record
    cache's entries are decoded already."""
    for kb, payload in entries:
        if isinstance(payload, Decoded):
            yield kb, payload[0], payload[1]
        else:
            yield kb, key_decoder(kb), value_decoder(payload[TIMESTAMP_SIZE:])


def raw_scan(store: Any, lo: Any, hi: Any, limit: int | None) -> Iterator[RawEntry]:
    """``store.raw_entries`` between the serialized bounds (inclusive), the first ``limit``."""
    ks = store.key_serde.serialize
    raw: Iterator[RawEntry] = store.raw_entries(
        None if lo is None else ks(lo), None if hi is None else ks(hi)
    )
    return raw if limit is None else islice(raw, limit)


def decoded_scan(
    store: Any, lo: Any, hi: Any, limit: int | None
) -> Iterator[tuple[bytes, Any, Any]]:
    """:func:`raw_scan` decoded with the store's serdes."""
    return decode_entries(
        raw_scan(store, lo, hi, limit),
        store.key_serde.deserialize,
        store.value_serde.deserialize,
    )


def prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: unbounded)."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return None


class SerdeStore:
    """Serializes keys and values onto ``inner``: the engine, or a
    :class:`~streamtable.state._changelog.ChangeLoggingBytesStore` over it. Restores
    (:meth:`restore_batch`) write to the engine itself, never to the changelog.
    """

    def __init__(
        self, name: str, inner: BytesStore, key_serde: Serde[Any], value_serde: Serde[Any]
    ) -> None:
        self.name = name
        self.inner = inner
        self.engine: BytesStore = (
            inner.engine if isinstance(inner, ChangeLoggingBytesStore) else inner
        )
        self.key_serde = key_serde
        self.value_serde = value_serde

    # -- reads -----------------------------------------------------------------------------
    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        return self.get_with_timestamp_serialized(self.key_serde.serialize(key))

    def get_with_timestamp_serialized(self, key: bytes) -> tuple[Any, int] | None:
        """:meth:`get_with_timestamp` of an already-serialized key."""
        raw = self.inner.get(key)
        if raw is None:
            return None
        return self.value_serde.deserialize(raw[TIMESTAMP_SIZE:]), stored_timestamp(raw)

    def get(self, key: Any) -> Any:
        raw = self.inner.get(self.key_serde.serialize(key))
        if raw is None:
            return None
        return self.value_serde.deserialize(raw[TIMESTAMP_SIZE:])

    def _decode(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[Any, Any]]:
        kd = self.key_serde.deserialize
        vd = self.value_serde.deserialize
        for kb, vb in items:
            yield kd(kb), vd(vb[TIMESTAMP_SIZE:])

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        ks = self.key_serde.serialize
        found = self._decode(
            self.inner.range(None if lo is None else ks(lo), None if hi is None else ks(hi))
        )
        return found if limit is None else islice(found, limit)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return self._decode(self.inner.range(None, None))

    def raw_entries(self, lo: bytes | None, hi: bytes | None) -> Iterator[RawEntry]:
        """Entries between serialized bounds, in key-bytes order, not decoded."""
        return self.inner.range(lo, hi)

    def raw_range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[RawEntry]:
        """``range``'s entries not decoded (see :func:`decode_entries`)."""
        return raw_scan(self, lo, hi, limit)

    def range_entries(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[bytes, Any, Any]]:
        """``range`` with each key's serialized bytes: ``(key bytes, key, value)``."""
        return decoded_scan(self, lo, hi, limit)

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        return self.prefix_scan_bytes(self.key_serde.serialize(prefix))

    def prefix_scan_bytes(self, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        """Entries whose serialized key starts with ``prefix``."""
        kd = self.key_serde.deserialize
        vd = self.value_serde.deserialize
        for kb, vb in self.inner.range(prefix, prefix_upper_bound(prefix)):
            if kb.startswith(prefix):
                yield kd(kb), vd(vb[TIMESTAMP_SIZE:])

    def approximate_num_entries(self) -> int:
        return self.inner.approximate_num_entries()

    def get_many_serialized(self, keys: list[bytes]) -> list[Any]:
        """Values (or None) of already-serialized keys, in one engine multi-get."""
        vd = self.value_serde.deserialize
        return [
            None if raw is None else vd(raw[TIMESTAMP_SIZE:]) for raw in self.inner.get_many(keys)
        ]

    # -- writes ----------------------------------------------------------------------------
    def put(self, key: Any, value: Any, timestamp: int) -> None:
        self.inner.put(
            self.key_serde.serialize(key),
            None if value is None else self.value_serde.serialize(value),
            timestamp,
        )

    def delete(self, key: Any) -> None:
        self.put(key, None, 0)

    def put_all(self, entries: Iterable[tuple[Any, Any, int]]) -> None:
        """Write many entries in one engine batch (RocksDB ``WriteBatch``)."""
        ks = self.key_serde.serialize
        self.put_all_serialized([(ks(key), value, ts) for key, value, ts in entries])

    def put_all_serialized(self, entries: list[tuple[bytes, Any, int]]) -> None:
        """Like :meth:`put_all` for keys the caller has serialized already."""
        vs = self.value_serde.serialize
        self.inner.write_batch(
            [(kb, None if value is None else vs(value), ts) for kb, value, ts in entries]
        )

    def restore_batch(self, records: Iterable[Write]) -> None:
        """Apply changelog records (key bytes, value bytes or None, timestamp) to the engine,
        without logging them."""
        self.engine.write_batch(records)

    def flush(self) -> None:
        self.inner.flush()

    def close(self) -> None:
        self.inner.close()

"""Typed key-value stores: the serde layer over a byte engine, with optional changelogging.

A stored value is ``(value, timestamp)``; on disk it is ``8-byte big-endian timestamp + value
bytes`` (like Kafka Streams' timestamped stores). Iteration order is the order of serialized key
bytes, so range scans agree with Kafka Streams for the same serdes.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from typing import Any, Protocol

import orjson

from streamtable.serde import JsonSerde, Serde
from streamtable.state._bytes import BytesStore

_TS = struct.Struct(">q")
_TS_SIZE = _TS.size


class ChangelogWriter(Protocol):
    """Where a store sends its changes (a Kafka producer in the runtime; a list in tests)."""

    def send_changelog(
        self, topic: str, partition: int, key: bytes, value: bytes | None, timestamp: int
    ) -> None: ...


class ReadableStore(Protocol):
    """The read side every store and view offers."""

    name: str

    def get(self, key: Any) -> Any: ...

    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None: ...

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]: ...

    def range_entries(
        self,
        lo: Any = None,
        hi: Any = None,
        limit: int | None = None,
        json_fragments: bool = False,
    ) -> Iterator[tuple[bytes, Any, Any]]: ...

    def all(self) -> Iterator[tuple[Any, Any]]: ...

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]: ...

    def approximate_num_entries(self) -> int: ...


class Decoded(tuple[Any, Any]):
    """``(key, value)`` already decoded: a record cache's dirty entry in a raw scan."""

    __slots__ = ()


RawEntry = tuple[bytes, "bytes | Decoded"]
"""``(key bytes, stored bytes)`` as the engine holds it, or ``(key bytes, Decoded((key,
value)))`` from a record cache: what a scan merges by key bytes before it decodes only the
entries it keeps."""


def decode_entries(
    entries: Iterable[RawEntry], serdes: Any, json_fragments: bool = False
) -> Iterator[tuple[bytes, Any, Any]]:
    """``(key bytes, key, value)`` of raw entries, with ``serdes.key_serde`` and
    ``serdes.value_serde`` (a store's). With ``json_fragments`` and a JSON value serde, stored
    values come as ``orjson.Fragment`` of their JSON text (valid JSON: it was written by the
    serde or validated by it), to be served as JSON without decoding them."""
    kd = serdes.key_serde.deserialize
    vd: Callable[[bytes], Any] = serdes.value_serde.deserialize
    if json_fragments and isinstance(serdes.value_serde, JsonSerde):
        vd = orjson.Fragment
    for kb, payload in entries:
        if isinstance(payload, Decoded):
            yield kb, payload[0], payload[1]
        else:
            yield kb, kd(kb), vd(payload[_TS_SIZE:])


def scan_entries(
    store: Any, serdes: Any, lo: Any, hi: Any, limit: int | None, json_fragments: bool
) -> Iterator[tuple[bytes, Any, Any]]:
    """``store.raw_entries`` between the serialized bounds, the first ``limit``, decoded with
    ``serdes`` (see :func:`decode_entries`)."""
    ks = serdes.key_serde.serialize
    raw = store.raw_entries(None if lo is None else ks(lo), None if hi is None else ks(hi))
    return decode_entries(raw if limit is None else islice(raw, limit), serdes, json_fragments)


class KeyValueStore(ReadableStore, Protocol):
    """A writable store, as processors see it."""

    def put(self, key: Any, value: Any, timestamp: int) -> None: ...

    def delete(self, key: Any) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with ``prefix`` (None: unbounded)."""
    raw = bytearray(prefix)
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return bytes(raw)
        raw.pop()
    return None


class SerdeStore:
    """Serializes keys and values onto a :class:`BytesStore`; logs each write if asked to.

    ``changelog`` is ``(writer, topic, partition)``; ``None`` for stores whose changelog is their
    source topic (table sources) or that are not logged.
    """

    def __init__(
        self,
        name: str,
        engine: BytesStore,
        key_serde: Serde[Any],
        value_serde: Serde[Any],
        changelog: tuple[ChangelogWriter, str, int] | None = None,
    ) -> None:
        self.name = name
        self.engine = engine
        self.key_serde = key_serde
        self.value_serde = value_serde
        self._changelog = changelog

    # -- reads -----------------------------------------------------------------------------
    def get_with_timestamp(self, key: Any) -> tuple[Any, int] | None:
        raw = self.engine.get(self.key_serde.serialize(key))
        if raw is None:
            return None
        return self.value_serde.deserialize(raw[_TS_SIZE:]), _TS.unpack_from(raw)[0]

    def get(self, key: Any) -> Any:
        raw = self.engine.get(self.key_serde.serialize(key))
        if raw is None:
            return None
        return self.value_serde.deserialize(raw[_TS_SIZE:])

    def _decode(self, items: Iterator[tuple[bytes, bytes]]) -> Iterator[tuple[Any, Any]]:
        kd = self.key_serde.deserialize
        vd = self.value_serde.deserialize
        for kb, vb in items:
            yield kd(kb), vd(vb[_TS_SIZE:])

    def range(
        self, lo: Any = None, hi: Any = None, limit: int | None = None
    ) -> Iterator[tuple[Any, Any]]:
        ks = self.key_serde.serialize
        found = self._decode(
            self.engine.range(None if lo is None else ks(lo), None if hi is None else ks(hi))
        )
        return found if limit is None else islice(found, limit)

    def all(self) -> Iterator[tuple[Any, Any]]:
        return self._decode(self.engine.range(None, None))

    def raw_entries(self, lo: bytes | None, hi: bytes | None) -> Iterator[RawEntry]:
        """Entries in key-bytes order, not decoded yet (see :func:`decode_entries`)."""
        return self.engine.range(lo, hi)

    def range_entries(
        self,
        lo: Any = None,
        hi: Any = None,
        limit: int | None = None,
        json_fragments: bool = False,
    ) -> Iterator[tuple[bytes, Any, Any]]:
        """``range`` with each key's serialized bytes: ``(key bytes, key, value)``."""
        return scan_entries(self, self, lo, hi, limit, json_fragments)

    def prefix_scan(self, prefix: Any) -> Iterator[tuple[Any, Any]]:
        return self.prefix_scan_bytes(self.key_serde.serialize(prefix))

    def prefix_scan_bytes(self, prefix: bytes) -> Iterator[tuple[Any, Any]]:
        """Entries whose serialized key starts with ``prefix``."""
        kd = self.key_serde.deserialize
        vd = self.value_serde.deserialize
        for kb, vb in self.engine.range(prefix, _prefix_upper_bound(prefix)):
            if kb.startswith(prefix):
                yield kd(kb), vd(vb[_TS_SIZE:])

    def approximate_num_entries(self) -> int:
        return self.engine.approximate_num_entries()

    # -- writes ----------------------------------------------------------------------------
    def put(self, key: Any, value: Any, timestamp: int) -> None:
        kb = self.key_serde.serialize(key)
        vb = None if value is None else self.value_serde.serialize(value)
        self.engine.put(kb, None if vb is None else _TS.pack(timestamp) + vb)
        if self._changelog is not None:
            writer, topic, partition = self._changelog
            writer.send_changelog(topic, partition, kb, vb, timestamp)

    def put_all(self, entries: Iterable[tuple[Any, Any, int]]) -> None:
        """Write many entries in one engine batch (RocksDB ``WriteBatch``), logging each."""
        ks = self.key_serde.serialize
        self.put_all_serialized([(ks(key), value, ts) for key, value, ts in entries])

    def get_many_serialized(self, keys: list[bytes]) -> list[Any]:
        """Values (or None) of already-serialized keys, in one engine multi-get."""
        vd = self.value_serde.deserialize
        return [None if raw is None else vd(raw[_TS_SIZE:]) for raw in self.engine.get_many(keys)]

    def put_all_serialized(self, entries: list[tuple[bytes, Any, int]]) -> None:
        """Like :meth:`put_all` for keys the caller has serialized already."""
        vs = self.value_serde.serialize
        pack = _TS.pack
        batch: list[tuple[bytes, bytes | None]] = []
        logged: list[tuple[bytes, bytes | None, int]] = []
        for kb, value, ts in entries:
            vb = None if value is None else vs(value)
            batch.append((kb, None if vb is None else pack(ts) + vb))
            logged.append((kb, vb, ts))
        self.engine.write_batch(batch)
        if self._changelog is not None:
            writer, topic, partition = self._changelog
            for kb, vb, ts in logged:
                writer.send_changelog(topic, partition, kb, vb, ts)

    def delete(self, key: Any) -> None:
        self.put(key, None, 0)

    def restore_batch(self, records: Iterable[tuple[bytes, bytes | None, int]]) -> None:
        """Apply changelog records (key bytes, value bytes or None, timestamp) without logging."""
        pack = _TS.pack
        self.engine.write_batch(
            (kb, None if vb is None else pack(ts) + vb) for kb, vb, ts in records
        )

    def flush(self) -> None:
        self.engine.flush()

    def close(self) -> None:
        self.engine.close()

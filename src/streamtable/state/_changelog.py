"""The changelogging layer: a byte store that sends every write to the store's changelog.

It sits between the engine and the serde layer, so it logs exactly the key and value bytes the
layer above wrote, with their timestamp: ``<application.id>-<store>-changelog``, partition = the
task's. Stores whose changelog is their source topic (table sources), unlogged stores, and every
restore (active, standby, global) write to the engine without this layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from streamtable.state._bytes import BytesStore, Write


class ChangelogWriter(Protocol):
    """Where a store sends its changes (a Kafka producer in the runtime; a list in tests)."""

    def send_changelog(
        self, topic: str, partition: int, key: bytes, value: bytes | None, timestamp: int
    ) -> None: ...


class ChangeLoggingBytesStore:
    """Writes go to ``engine`` and then to ``writer``; reads are the engine's own methods
    (bound here, so a read costs no call through this layer)."""

    get: Callable[[bytes], bytes | None]
    get_many: Callable[[list[bytes]], list[bytes | None]]
    range: Callable[[bytes | None, bytes | None], Iterator[tuple[bytes, bytes]]]
    approximate_num_entries: Callable[[], int]
    flush: Callable[[], None]
    close: Callable[[], None]

    def __init__(
        self, engine: BytesStore, writer: ChangelogWriter, topic: str, partition: int
    ) -> None:
        self.engine = engine
        self.topic = topic
        self.partition = partition
        self.writer = writer
        self.get = engine.get
        self.get_many = engine.get_many
        self.range = engine.range
        self.approximate_num_entries = engine.approximate_num_entries
        self.flush = engine.flush
        self.close = engine.close

    def put(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        self.engine.put(key, value, timestamp)
        self.writer.send_changelog(self.topic, self.partition, key, value, timestamp)

    def log(self, key: bytes, value: bytes | None, timestamp: int) -> None:
        """Only the changelog record of a write the engine already has (see
        ``TableSuppress``: a buffer entry removed at once, its tombstone logged once what it
        emitted is acknowledged)."""
        self.writer.send_changelog(self.topic, self.partition, key, value, timestamp)

    def write_batch(self, items: Iterable[Write]) -> None:
        """One engine batch, then one changelog record per write, in order."""
        writes = items if isinstance(items, list) else list(items)
        self.engine.write_batch(writes)
        send, topic, partition = self.writer.send_changelog, self.topic, self.partition
        for key, value, timestamp in writes:
            send(topic, partition, key, value, timestamp)

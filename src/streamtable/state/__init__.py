"""State stores: engines (memory, RocksDB) <- serde + changelogging <- caching; read-only views.

Processors write through the stack; readers only ever get a :class:`ReadOnlyKeyValueStore`.
"""

from streamtable.state._bytes import BytesStore, MemoryBytesStore, RocksDBBytesStore
from streamtable.state._caching import CacheBudget, CachingStore, FlushListener
from streamtable.state._kv import ChangelogWriter, KeyValueStore, ReadableStore, SerdeStore
from streamtable.state._views import ReadOnlyKeyValueStore

__all__ = [
    "BytesStore",
    "CacheBudget",
    "CachingStore",
    "ChangelogWriter",
    "FlushListener",
    "KeyValueStore",
    "MemoryBytesStore",
    "ReadOnlyKeyValueStore",
    "ReadableStore",
    "RocksDBBytesStore",
    "SerdeStore",
]

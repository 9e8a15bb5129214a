"""State stores, as a stack of layers (assembled by ``streamtable.topology.build_store``):

    engine (memory, RocksDB) <- changelogging (bytes) <- serde <- record cache <- metered

Processors write through the stack; readers only ever get a :class:`ReadOnlyKeyValueStore`.
"""

from streamtable.state._bytes import (
    BytesStore,
    MemoryBytesStore,
    RocksDBBytesStore,
    Write,
    open_engine,
)
from streamtable.state._caching import CacheBudget, CachingStore, FlushListener
from streamtable.state._changelog import ChangeLoggingBytesStore, ChangelogWriter
from streamtable.state._kv import (
    Decoded,
    KeyValueStore,
    RawEntry,
    ReadableStore,
    SerdeStore,
    decode_entries,
)
from streamtable.state._metered import MeteredStore, record_cache
from streamtable.state._views import ReadOnlyKeyValueStore

__all__ = [
    "BytesStore",
    "CacheBudget",
    "CachingStore",
    "ChangeLoggingBytesStore",
    "ChangelogWriter",
    "Decoded",
    "FlushListener",
    "KeyValueStore",
    "MemoryBytesStore",
    "MeteredStore",
    "RawEntry",
    "ReadOnlyKeyValueStore",
    "ReadableStore",
    "RocksDBBytesStore",
    "SerdeStore",
    "Write",
    "decode_entries",
    "open_engine",
    "record_cache",
]

"""State stores, as a stack of layers (assembled by ``streamtable.topology.build_store``):

    engine (memory, RocksDB) <- changelogging (bytes) <- serde <- record cache <- metered

A window store puts :class:`SegmentedWindowBytesStore` (time segments, retention) between the
engine and the changelogging layer; its serde layer's keys are :class:`~streamtable.Windowed`.
A session store does the same, segmented by session end.

Processors write through the stack; readers only ever get a :class:`ReadOnlyKeyValueStore` or a
:class:`ReadOnlyWindowStore` or a :class:`ReadOnlySessionStore`.
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
from streamtable.state._memory import RocksDBMemory
from streamtable.state._metered import MeteredStore, changelogging, record_cache
from streamtable.state._session import ReadOnlySessionStore
from streamtable.state._views import (
    ReadOnlyKeyValueStore,
    ReadOnlyWindowStore,
    WindowScan,
    starting_in,
)
from streamtable.state._window import SegmentedWindowBytesStore, segments_of
from streamtable.state._window_cache import WindowCachingStore

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
    "ReadOnlySessionStore",
    "ReadOnlyWindowStore",
    "ReadableStore",
    "RocksDBBytesStore",
    "RocksDBMemory",
    "SegmentedWindowBytesStore",
    "SerdeStore",
    "WindowCachingStore",
    "WindowScan",
    "Write",
    "decode_entries",
    "open_engine",
    "changelogging",
    "record_cache",
    "segments_of",
    "starting_in",
]

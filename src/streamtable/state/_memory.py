"""One memory budget for every RocksDB store of an application instance.

Left to itself, each RocksDB instance has its own block cache, its own memtables (up to two of
64 MiB) and table readers whose index and filter blocks live outside any cache, so an instance's
memory grows with its number of tasks times stores. Kafka Streams users bound it by hand with a
``RocksDBConfigSetter`` (the "bounded memory" recipe in its memory-management docs). Here it is a
setting, ``StreamsConfig.rocksdb_memory_bytes``, on by default:

* one LRU block cache of that capacity, shared by every store the instance opens (active tasks,
  standbys, global tables);
* one write buffer manager that charges every memtable to that same cache, with at most
  ``memtable_share`` of the budget in memtables before RocksDB flushes the largest;
* index and filter blocks kept in the cache too (high priority, pinned for level 0), so that
  they count against the budget instead of growing with the number of files.

The budget bounds what RocksDB allocates through its cache; it is a soft bound (RocksDB may go
over briefly while a flush is under way) and does not include the record cache
(``cache_max_bytes``), which has its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rocksdict import BlockBasedOptions, Cache, Options, WriteBufferManager

MEMTABLE_SHARE = 0.5
"""Part of the budget that memtables may hold before flushes are forced."""

_WRITE_BUFFER_BYTES = 16 * 1024 * 1024
"""A store's memtable size (RocksDB's default is 64 MiB; Kafka Streams' 16 MiB): many small
stores then flush in smaller steps within the shared budget."""


@dataclass(eq=False)
class RocksDBMemory:
    """The shared cache and write buffer manager of one application instance."""

    capacity_bytes: int
    cache: Cache = field(init=False)
    write_buffers: WriteBufferManager = field(init=False)

    def __post_init__(self) -> None:
        if self.capacity_bytes < 1024 * 1024:
            raise ValueError(f"a RocksDB memory budget needs at least 1 MiB: {self.capacity_bytes}")
        self.cache = Cache(self.capacity_bytes)
        self.write_buffers = WriteBufferManager.new_write_buffer_manager_with_cache(
            int(self.capacity_bytes * MEMTABLE_SHARE), False, self.cache
        )

    def apply(self, options: Options) -> None:
        """Make ``options`` (one store's) draw on this budget."""
        table = BlockBasedOptions()
        table.set_block_cache(self.cache)
        table.set_cache_index_and_filter_blocks(True)
        table.set_pin_l0_filter_and_index_blocks_in_cache(True)
        options.set_block_based_table_factory(table)
        options.set_write_buffer_manager(self.write_buffers)
        options.set_write_buffer_size(min(_WRITE_BUFFER_BYTES, self.write_buffers_bytes // 2))

    @property
    def write_buffers_bytes(self) -> int:
        return int(self.capacity_bytes * MEMTABLE_SHARE)

    def usage_bytes(self) -> int:
        """What the cache holds now, memtable reservations included."""
        return int(self.cache.get_usage())

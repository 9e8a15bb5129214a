"""KGroupedTable aggregate (and count): initializer, adder and subtractor per group.

Subtract first, then add; an empty group starts from ``initializer()``. A result of ``None``
deletes the row. ``count()`` is this operator with ``+1 / -1``: a group that drops to 0 stays
at 0, as in Kafka Streams.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Change, Node, TableMaterializer, TaskContext


class TableAggregate(Node):
    def __init__(
        self,
        name: str,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name)
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            raise ProcessingError(f"record key for aggregate into {self.store_name!r} is None")
        new, old = value
        found = self.store.get_with_timestamp(key)
        old_agg, agg_ts = (None, timestamp) if found is None else found
        agg = old_agg
        new_ts = timestamp
        if old is not None and agg is not None:
            agg = self.subtractor(key, old, agg)
            new_ts = max(timestamp, agg_ts)
        if new is not None:
            agg = self.adder(key, new, self.initializer() if agg is None else agg)
            if found is not None:
                new_ts = max(timestamp, agg_ts)
        if agg is None:
            new_ts = timestamp  # a delete carries the timestamp of the record that caused it
        self.materializer.put_and_forward(key, agg, old_agg, new_ts)


def count_adder(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def count_subtractor(key: Any, value: Any, agg: int) -> int:
    return agg - 1


def count_initializer() -> int:
    return 0

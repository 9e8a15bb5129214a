"""KGroupedTable reduce: adder and subtractor over the changes of each group.

The subtractor runs first (when there is an old value and a current aggregate), then the adder;
the first value of an empty group is taken as is. A result of ``None`` deletes the group's row,
and the next add starts again from the raw value.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Change, Node, TableMaterializer, TaskContext


class TableReduce(Node):
    def __init__(
        self,
        name: str,
        adder: Callable[[Any, Any], Any],
        subtractor: Callable[[Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name)
        self.adder = adder
        self.subtractor = subtractor
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            raise ProcessingError(f"record key for reduce into {self.store_name!r} is None")
        new, old = value
        found = self.store.get_with_timestamp(key)
        old_agg, agg_ts = (None, timestamp) if found is None else found
        agg = old_agg
        new_ts = timestamp
        if old is not None and agg is not None:
            agg = self.subtractor(agg, old)
            new_ts = max(timestamp, agg_ts)
        if new is not None:
            if agg is None:
                agg = new
            else:
                agg = self.adder(agg, new)
                new_ts = max(timestamp, agg_ts)
        if agg is None:
            new_ts = timestamp  # a delete carries the timestamp of the record that caused it
        self.materializer.put_and_forward(key, agg, old_agg, new_ts)

"""KGroupedTable aggregate (and count): initializer, adder and subtractor per group.

Each change of a group is applied subtract-first, then add; an empty group starts from
``initializer()``. A result of ``None`` deletes the row (and carries the timestamp of the record
that caused it). ``count()`` is this operator with ``+1 / -1``: a group that drops to 0 stays
at 0, as in Kafka Streams. :class:`GroupedTableUpdate` is the skeleton ``reduce`` shares.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from streamtable.errors import ProcessingError
from streamtable.processors._api import Change, Node, TableMaterializer, TaskContext


class GroupedTableUpdate(Node):
    """Applies ``(new, old)`` to the group's aggregate: ``subtract`` old, then ``add`` new."""

    def __init__(self, name: str, store: str) -> None:
        super().__init__(name)
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = ctx.store(self.store_name)
        self.materializer = TableMaterializer(self, self.store)

    def subtract(self, key: Any, agg: Any, value: Any) -> Any:
        raise NotImplementedError

    def add(self, key: Any, agg: Any, value: Any) -> Any:
        """``agg`` is None for an empty group."""
        raise NotImplementedError

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            raise ProcessingError(f"record key for the aggregate {self.store_name!r} is None")
        new, old = value
        found = self.store.get_with_timestamp(key)
        old_agg = None if found is None else found[0]
        agg = old_agg
        if old is not None and agg is not None:
            agg = self.subtract(key, agg, old)
        if new is not None:
            agg = self.add(key, agg, new)
        # The result is as recent as the newer of the record and the aggregate; a delete
        # carries the timestamp of the record that caused it.
        new_ts = timestamp if found is None or agg is None else max(timestamp, found[1])
        self.materializer.put_and_forward(key, agg, old_agg, new_ts)


class TableAggregate(GroupedTableUpdate):
    def __init__(
        self,
        name: str,
        initializer: Callable[[], Any],
        adder: Callable[[Any, Any, Any], Any],
        subtractor: Callable[[Any, Any, Any], Any],
        store: str,
    ) -> None:
        super().__init__(name, store)
        self.initializer = initializer
        self.adder = adder
        self.subtractor = subtractor

    def subtract(self, key: Any, agg: Any, value: Any) -> Any:
        return self.subtractor(key, value, agg)

    def add(self, key: Any, agg: Any, value: Any) -> Any:
        return self.adder(key, value, self.initializer() if agg is None else agg)


def count_adder(key: Any, value: Any, agg: int) -> int:
    return agg + 1


def count_subtractor(key: Any, value: Any, agg: int) -> int:
    return agg - 1


def count_initializer() -> int:
    return 0

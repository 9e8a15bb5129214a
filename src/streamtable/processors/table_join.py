"""KTable-KTable joins (inner, left, outer) on co-partitioned tables.

Each side has a processor that, on a change of its table, looks up the other table's current
value and applies the joiner; both feed a merger that materializes and forwards the result.
The rules are Kafka Streams' (``KTableKTable{Inner,Left,Right,Outer}Join``):

- inner: no result unless both sides have a row; a side turning to "no row" retracts it;
- left: a left row always yields ``joiner(left, right or None)``; a right change only matters
  while the left row exists;
- outer: a row on either side yields ``joiner(left or None, right or None)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from streamtable.processors._api import Change, GetterSpec, Node, TableMaterializer, TaskContext

JoinMode = Literal["inner", "left", "outer"]


class TableJoinSide(Node):
    """The processor for changes of one side. ``this_is_left`` orients the joiner."""

    def __init__(
        self,
        name: str,
        mode: JoinMode,
        this_is_left: bool,
        other: GetterSpec,
        joiner: Callable[[Any, Any], Any],
    ) -> None:
        super().__init__(name)
        self.mode = mode
        self.this_is_left = this_is_left
        self.other_spec = other
        self.joiner = joiner

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        # The other table as its changes have been forwarded, not with its record cache's
        # pending writes: a pending change reaches this join later anyway (when that cache
        # flushes), and one that never does (a write undone before the flush, or a delete
        # whose other side went first) must not have been joined. Read through the cache,
        # a delete on both sides between two flushes left the result row behind (each
        # side's delete found the other side's row already gone), as did an insert on one
        # side joined by the other and deleted again before its own flush.
        self.other = self.other_spec.bind(ctx, forwarded=True)

    def _join(self, this: Any, other: Any) -> Any:
        return self.joiner(this, other) if self.this_is_left else self.joiner(other, this)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if key is None:
            return
        new, old = value
        found = self.other(key)
        other = None if found is None else found[0]
        send_old = self.send_old_values
        # Which side may stand alone in a result: inner none; left only the left; outer both.
        alone = self.mode == "outer" or (self.mode == "left" and self.this_is_left)
        if other is None:
            if not alone:
                # No row on the other side and this one cannot stand alone: no result. Said
                # to the merger, which drops it unless a row is there: one left by a restore
                # that is behind the tables (at least once, the changelog's last writes lost
                # with a broker outage while the tables' stores kept them) goes with the next
                # change of its key instead of staying for good.
                self.forward(key, (None, None), timestamp)
                return
            if new is None and old is None:
                return
            result_ts = timestamp
        else:
            result_ts = max(timestamp, found[1])  # type: ignore[index]
        if self.mode == "outer":
            new_ok, old_ok = (
                new is not None or other is not None,
                old is not None or other is not None,
            )
        elif self.mode == "left" and not self.this_is_left:
            # right side of a left join: the left row exists here; a right delete keeps it.
            new_ok = old_ok = True
        else:
            new_ok, old_ok = new is not None, old is not None
        new_result = self._join(new, other) if new_ok else None
        old_result = self._join(old, other) if send_old and old_ok else None
        self.forward(key, (new_result, old_result), result_ts)


class TableJoinMerger(Node):
    """Joins both sides' results into one table; materializes it when a store is named."""

    def __init__(self, name: str, store: str | None) -> None:
        super().__init__(name)
        self.store_name = store

    def init(self, ctx: TaskContext) -> None:
        super().init(ctx)
        self.store = None if self.store_name is None else ctx.store(self.store_name)
        self.materializer = None if self.store is None else TableMaterializer(self, self.store)

    def process(self, key: Any, value: Change, timestamp: int) -> None:
        if self.store is not None and self.materializer is not None:
            if value[0] is None and self.store.get(key) is None:
                return  # no row stays no row
            self.materializer.put_and_forward(key, value[0], self.materializer.old(key), timestamp)
        else:
            self.forward(key, value, timestamp)

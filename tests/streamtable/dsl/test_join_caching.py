"""Table-table joins over record caches that flush only now and then (a commit interval), as the
runtime runs them: whatever changes land between two flushes, the join's store ends up equal to
the join of the two tables.

The test driver flushes after every record (as Kafka Streams' does), so these tests drive a
task directly and choose when its caches flush.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

import streamtable as st
from streamtable.serde import JSON, STRING
from streamtable.state import CacheBudget, MemoryBytesStore
from streamtable.topology import TaskCore, TaskHooks, build_store
from tests.streamtable import topologies as topo

pytestmark = pytest.mark.unit


class _Tasks:
    """One task per sub-topology of ``topology``, over cached in-memory stores. Records the
    tasks send to internal topics wait in ``pending`` until :meth:`deliver`; nothing flushes
    until :meth:`flush` (a commit). With ``metered``, a metered layer tops every store (the
    processors find the record cache under it)."""

    def __init__(self, topology: st.Topology, cache_max_bytes: int, metered: bool = False) -> None:
        budget = CacheBudget(cache_max_bytes)
        self.stores = {
            name: build_store(spec, MemoryBytesStore(), "t", 0, None, budget, metered=metered)[1]
            for name, spec in topology.stores.items()
        }
        internal = {f"t-{suffix}" for suffix in topology.internal_topics}
        self.pending: list[tuple[str, bytes | None, bytes | None, int]] = []
        tasks = self

        class Collector:
            def send(self, topic: str, key: Any, value: Any, ts: int, *rest: Any) -> None:
                if topic in internal:
                    tasks.pending.append((topic, key, value, ts))

            def partitions_of(self, topic: str) -> int:
                return 1

        self.tasks = [
            TaskCore(
                topology,
                sub,
                0,
                "t",
                {n: self.stores[n] for n in sub.stores},
                {},
                Collector(),
                TaskHooks(lambda: 0),
            )
            for sub in topology.subtopologies
        ]
        self.by_topic = {topic: task for task in self.tasks for topic in task.topics}
        self.ts = 0

    def pipe(self, topic: str, key: str, value: Any) -> None:
        self.ts += 1
        vb = None if value is None else JSON.serialize(value)
        self.by_topic[topic].process(topic, STRING.serialize(key), vb, self.ts, -1, None)

    def deliver(self) -> None:
        """Process what the tasks sent to internal topics so far, without flushing."""
        batch, self.pending = self.pending, []
        for topic, key, value, ts in batch:
            self.by_topic[topic].process(topic, key, value, ts, -1, None)

    def flush(self) -> None:
        for task in self.tasks:
            task.flush()

    def settle(self) -> None:
        """Commit and process internal topics until nothing is left (the input has stopped)."""
        self.flush()
        while self.pending:
            self.deliver()
            self.flush()


class _CachedJoin(_Tasks):
    """``topo.table_join(mode)``, with the two tables it should equal the join of."""

    def __init__(
        self, mode: str, cache_max_bytes: int = 10 * 1024 * 1024, metered: bool = False
    ) -> None:
        super().__init__(topo.table_join(mode), cache_max_bytes, metered)
        self.mode = mode
        self.tables: dict[str, dict[str, Any]] = {"left": {}, "right": {}}

    def pipe(self, topic: str, key: str, value: Any) -> None:
        super().pipe(topic, key, value)
        if value is None:
            self.tables[topic].pop(key, None)
        else:
            self.tables[topic][key] = value

    def result(self) -> dict[str, Any]:
        return dict(self.stores["join-store"].all())

    def expected(self) -> dict[str, Any]:
        left, right = self.tables["left"], self.tables["right"]
        if self.mode == "inner":
            keys = left.keys() & right.keys()
        elif self.mode == "left":
            keys = set(left)
        else:
            keys = left.keys() | right.keys()
        return {k: {"l": left.get(k), "r": right.get(k)} for k in keys}


@pytest.mark.parametrize("first", ["left", "right"])
def test_inner_join_row_goes_when_both_sides_are_deleted_between_two_flushes(first: str) -> None:
    join = _CachedJoin("inner")
    join.pipe("left", "k", 1)
    join.pipe("right", "k", 2)
    join.flush()
    assert join.result() == {"k": {"l": 1, "r": 2}}
    second = "right" if first == "left" else "left"
    join.pipe(first, "k", None)
    join.pipe(second, "k", None)
    join.flush()  # each side's delete finds the other side's row already gone
    assert join.result() == {}


@pytest.mark.parametrize("mode", ["inner", "left"])
def test_a_change_without_a_match_removes_a_result_row_the_tables_do_not_imply(mode: str) -> None:
    # A restore behind the tables (at least once: the changelog's last writes lost with a
    # broker outage, the tables' stores ahead of them) leaves such a row.
    join = _CachedJoin(mode)
    join.stores["join-store"].put("k", {"l": 1, "r": 2}, 0)
    join.flush()
    side = "left" if mode == "inner" else "right"  # (a left join's left row stands alone)
    join.pipe(side, "k", 3)  # the other side has no row: no result
    join.flush()
    assert join.result() == join.expected() == {}


WRITES = hs.lists(
    hs.tuples(
        hs.sampled_from(["left", "right"]),
        hs.sampled_from("ab"),
        hs.none() | hs.integers(0, 3),
        hs.booleans(),  # flush after this write
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(
    hs.sampled_from(["inner", "left", "outer"]),
    WRITES,
    hs.sampled_from([300, 10**7]),
    hs.booleans(),
)
def test_cached_join_store_equals_the_join_of_the_tables(
    mode: str, writes: list[tuple[str, str, int | None, bool]], cache_max_bytes: int, metered: bool
) -> None:
    join = _CachedJoin(mode, cache_max_bytes, metered)
    for side, key, value, flush in writes:
        join.pipe(side, key, value)
        if flush:
            join.flush()
    join.settle()
    assert join.result() == join.expected()


FK_WRITES = hs.lists(
    hs.tuples(
        hs.sampled_from(["orders", "products", "deliver", "flush", "flush 0", "flush 1"]),
        hs.sampled_from(["o0", "o1"]),
        hs.sampled_from([None, "x", "y"]),  # the order's product (None: no order)
        hs.sampled_from([None, "A"]),  # the product's name (None: no product)
    ),
    max_size=40,
)


@settings(max_examples=500, deadline=None)
@given(hs.booleans(), FK_WRITES, hs.sampled_from([400, 10**7]), hs.booleans())
def test_cached_fk_join_store_equals_the_join_of_the_tables(
    left: bool,
    writes: list[tuple[str, str, str | None, str | None]],
    cache_max_bytes: int,
    metered: bool,
) -> None:
    tasks = _Tasks(topo.fk_join(left), cache_max_bytes, metered)
    orders: dict[str, Any] = {}
    products: dict[str, Any] = {}
    for what, order, product, name in writes:
        if what == "orders":
            value = None if product is None else {"product": product, "qty": 1}
            tasks.pipe("orders", order, value)
            orders.pop(order, None) if value is None else orders.__setitem__(order, value)
        elif what == "products":
            key = product or "x"
            found = None if name is None else {"name": name}
            tasks.pipe("products", key, found)
            products.pop(key, None) if found is None else products.__setitem__(key, found)
        elif what == "deliver":
            tasks.deliver()
        elif what == "flush":
            tasks.flush()
        else:  # one task commits (the two sub-topologies' tasks may run on two instances)
            tasks.tasks[int(what[-1])].flush()
    tasks.settle()
    expected = {
        o: {"o": v, "p": products.get(v["product"])}
        for o, v in orders.items()
        if left or v["product"] in products
    }
    assert dict(tasks.stores["fk-store"].all()) == expected


def test_fk_join_never_answers_with_a_right_row_that_is_gone_before_its_flush() -> None:
    tasks = _Tasks(topo.fk_join(False), 10 * 1024 * 1024)
    tasks.pipe("orders", "o", {"product": "x", "qty": 1})
    tasks.flush()  # the subscription is on its way
    tasks.pipe("products", "x", {"name": "X"})
    tasks.deliver()  # the subscription meets x, not yet flushed
    tasks.pipe("products", "x", None)  # x is gone before its cache ever forwarded it
    tasks.settle()
    assert dict(tasks.stores["fk-store"].all()) == {}


def test_fk_join_row_deleted_and_back_before_the_answer_to_its_delete_loses_its_result() -> None:
    tasks = _Tasks(topo.fk_join(False), 10 * 1024 * 1024)
    tasks.pipe("products", "x", {"name": "X"})
    tasks.pipe("orders", "o", {"product": "x", "qty": 1})
    tasks.settle()
    assert dict(tasks.stores["fk-store"].all()) == {
        "o": {"o": {"product": "x", "qty": 1}, "p": {"name": "X"}}
    }
    tasks.pipe("orders", "o", None)
    tasks.flush()  # the delete is on its way to x
    tasks.pipe("orders", "o", {"product": "y", "qty": 1})  # y does not exist
    tasks.flush()  # before the answer to the delete came back (it no longer matches the row)
    tasks.settle()
    assert dict(tasks.stores["fk-store"].all()) == {}


def test_fk_left_join_answer_is_not_dropped_for_a_left_row_that_never_reached_its_flush() -> None:
    tasks = _Tasks(topo.fk_join(True), 10 * 1024 * 1024)
    tasks.pipe("orders", "o", {"product": "x", "qty": 1})
    tasks.settle()
    assert dict(tasks.stores["fk-store"].all()) == {
        "o": {"o": {"product": "x", "qty": 1}, "p": None}
    }
    tasks.pipe("orders", "o", None)
    tasks.flush()  # the delete is on its way
    tasks.pipe("orders", "o", {"product": "y", "qty": 1})
    tasks.deliver()  # its answer meets a row written since, not yet flushed ...
    tasks.deliver()
    tasks.pipe("orders", "o", None)  # ... and gone again before that flush
    tasks.settle()
    assert dict(tasks.stores["fk-store"].all()) == {}

"""``KTable.suppress``: the graph node, its buffer store and the suppressed table's getter."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from streamtable.dsl._graph import Graph
from streamtable.errors import TopologyError
from streamtable.processors.table_suppress import BufferedGetterSpec, TableSuppress
from streamtable.serde import BYTES
from streamtable.suppression import Suppressed
from streamtable.topology._nodes import ProcessorSpec, StoreSpec

if TYPE_CHECKING:
    from streamtable.dsl._table import KTable


def window_grace(g: Graph, node: str) -> int:
    """The grace of the windows of the windowed aggregation upstream of ``node``, through
    single-table operators; with several parents (a join), the largest of theirs, so a window
    is final only once every parent's window has closed. As Kafka Streams
    (``GraphGraceSearchUtil``): a table not computed by a windowed aggregation has no window
    close time, and says so."""
    if node in g.window_grace:
        return g.window_grace[node]
    spec = next((p for p in g.processors if p.name == node), None)
    if spec is None or not spec.parents:
        raise TopologyError(
            "suppress(Suppressed.until_window_closes(...)) needs a windowed table (from "
            "windowed_by(...).count/reduce/aggregate, then filters or map_values): the window "
            f"close time is only defined for windowed computations (node {node!r} is not one)"
        )
    return max(window_grace(g, parent) for parent in spec.parents)


def suppress(table: KTable, suppressed: Suppressed) -> KTable:
    """The node that holds ``table``'s changes back; see ``processors.table_suppress``."""
    from streamtable.dsl._table import KTable

    if not isinstance(suppressed, Suppressed):
        raise TypeError(
            "suppress takes st.Suppressed.until_window_closes(...) or "
            f"st.Suppressed.until_time_limit(...), got {type(suppressed).__name__}"
        )
    g = table._graph
    grace = window_grace(g, table._node) if suppressed.until_window_close else None
    name = g.new_name("KTABLE-SUPPRESS", suppressed.name)
    store = f"{suppressed.name}-store" if suppressed.name else f"{name}-STATE-STORE"
    logged = suppressed.buffer_config.logged
    g.add_store(StoreSpec(store, BYTES, BYTES, logged=logged, cached=False, kind="memory"))
    make = partial(
        TableSuppress, name, suppressed, grace, store, table.key_serde, table.value_serde
    )
    g.add_processor(ProcessorSpec(name, (table._node,), make, (store,)))
    # The buffer keeps the prior value of each key: the parent sends old values, always.
    g.old_value_demands.add(table._node)
    g.old_value_parents[name] = ()
    getter = BufferedGetterSpec(
        table._getter.store,
        buffer=store,
        parent=table._getter,
        key_serde=table.key_serde,
        value_serde=table.value_serde,
    )
    return KTable(g, name, table.key_serde, table.value_serde, getter, table._topics)

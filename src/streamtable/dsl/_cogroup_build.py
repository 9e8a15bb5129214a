"""The graph of a cogroup, plain or windowed (``_cogroup``, ``_cogroup_windowed``): as Kafka
Streams' ``CogroupedStreamAggregateBuilder``, an aggregate node per input, all reading and
writing one store, and one merge node, the table."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

from streamtable.dsl._table import KTable
from streamtable.dsl._windowed import add_window_node
from streamtable.processors import GetterSpec, Node
from streamtable.processors.stream_stream_join import PassThrough
from streamtable.serde import Serde
from streamtable.topology._nodes import ProcessorSpec, StoreSpec

if TYPE_CHECKING:
    from streamtable.dsl._grouped_stream import KGroupedStream

Aggregator = Callable[[Any, Any, Any], Any]
"""``aggregator(key, value, aggregate) -> new aggregate``, as Kafka Streams' ``Aggregator``."""

Inputs = tuple[tuple["KGroupedStream", Aggregator], ...]
"""The grouped streams of a cogroup, each with its aggregator."""


def build_cogroup(
    inputs: Inputs,
    spec: StoreSpec,
    step: Callable[[str, Aggregator], Callable[[], Node]],
    key_serde: Serde[Any],
    grace_ms: int | None = None,
) -> KTable:
    """The cogroup of ``inputs`` into the store ``spec``: an aggregate node per input (made by
    ``step(node name, aggregator)``), over the input repartitioned if its key may have
    changed, and a merge node, the table (keyed by ``key_serde``). ``grace_ms``: a windowed
    cogroup's (what a suppression downstream waits for)."""
    g = inputs[0][0]._stream._graph
    store = spec.name
    g.add_store(spec)
    merge = g.new_name("COGROUPKSTREAM-MERGE")
    nodes: list[str] = []
    topics: list[str] = []
    for n, (grouped, aggregator) in enumerate(inputs):
        stream = grouped._stream._co_partitioned(name=f"{store}-{n}")
        name = g.new_name("COGROUPKSTREAM-AGGREGATE")
        node = ProcessorSpec(name, (stream._node,), step(name, aggregator), (store,))
        add_window_node(g, node, grace_ms)
        nodes.append(name)
        topics.extend(stream._topics)
    g.add_processor(ProcessorSpec(merge, tuple(nodes), partial(PassThrough, merge), ()))
    g.old_value_parents[merge] = tuple(nodes)
    inputs_topics = tuple(sorted(set(topics)))
    g.copartition_groups.append(inputs_topics)
    return KTable(
        g, merge, key_serde, spec.value_serde, GetterSpec(store), inputs_topics, store
    )  # fmt: skip


def check_callable(name: str, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"cogroup aggregate: {name} must be callable, got {fn!r}")

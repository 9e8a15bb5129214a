"""The builder's growing graph, shared by the DSL objects of one ``StreamsBuilder``."""

from __future__ import annotations

from dataclasses import dataclass, field

from streamtable.errors import TopologyError
from streamtable.topology._nodes import (
    GlobalTableSpec,
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)


@dataclass
class Graph:
    """Mutable only while building: DSL objects append nodes here and stay immutable."""

    sources: list[SourceSpec] = field(default_factory=list)
    processors: list[ProcessorSpec] = field(default_factory=list)
    sinks: list[SinkSpec] = field(default_factory=list)
    stores: dict[str, StoreSpec] = field(default_factory=dict)
    global_tables: list[GlobalTableSpec] = field(default_factory=list)
    internal_topics: dict[str, InternalTopicSpec] = field(default_factory=dict)
    copartition_groups: list[tuple[str, ...]] = field(default_factory=list)
    # node -> table nodes that must send old values if this node must
    old_value_parents: dict[str, tuple[str, ...]] = field(default_factory=dict)
    old_value_demands: set[str] = field(default_factory=set)
    # windowed aggregation node -> its windows' grace (ms), for suppress(until_window_closes)
    window_grace: dict[str, int] = field(default_factory=dict)
    counter: int = 0
    names: set[str] = field(default_factory=set)
    source_topics: set[str] = field(default_factory=set)

    def new_name(self, prefix: str, given: str | None = None) -> str:
        name = given if given is not None else f"{prefix}-{self.counter:010d}"
        self.counter += 1
        if name in self.names:
            raise TopologyError(f"duplicate processor name {name!r}")
        self.names.add(name)
        return name

    def add_source(self, spec: SourceSpec) -> None:
        if not spec.internal:
            if spec.topic in self.source_topics:
                raise TopologyError(
                    f"topic {spec.topic!r} is already read by another source of this topology"
                )
            self.source_topics.add(spec.topic)
        self.sources.append(spec)

    def add_store(self, spec: StoreSpec) -> None:
        if spec.name in self.stores:
            raise TopologyError(f"duplicate store name {spec.name!r}")
        self.stores[spec.name] = spec

    def add_processor(self, spec: ProcessorSpec) -> None:
        for store in spec.stores:
            if store not in self.stores:
                raise TopologyError(f"processor {spec.name!r} uses unknown store {store!r}")
        self.processors.append(spec)

    def add_internal_topic(self, spec: InternalTopicSpec) -> None:
        if spec.suffix in self.internal_topics:
            raise TopologyError(f"duplicate internal topic {spec.suffix!r}")
        self.internal_topics[spec.suffix] = spec

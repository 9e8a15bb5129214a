"""The built topology: sub-topologies split at repartition topics, stores, internal topics."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TypeVar

from streamtable.serde import bind
from streamtable.topology._nodes import (
    GlobalTableSpec,
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)

_Spec = TypeVar("_Spec", SourceSpec, SinkSpec, StoreSpec)


@dataclass(frozen=True)
class SubTopology:
    """Sources, processors (parents before children), sinks and stores run together by a task.

    A task is (sub-topology, partition): it reads partition ``p`` of every source topic.
    ``copartition_groups`` lists source topics that must have equal partition counts (joins).
    """

    id: int
    sources: tuple[SourceSpec, ...]
    processors: tuple[ProcessorSpec, ...]
    sinks: tuple[SinkSpec, ...]
    stores: tuple[str, ...]
    copartition_groups: tuple[tuple[str, ...], ...] = ()

    def source_topics(self, application_id: str) -> list[str]:
        return [f"{application_id}-{s.topic}" if s.internal else s.topic for s in self.sources]


@dataclass(frozen=True)
class Topology:
    """What ``StreamsBuilder.build()`` returns: immutable; run it with ``StreamsApp`` or
    ``TopologyTestDriver``. ``describe()`` prints it like Kafka Streams' TopologyDescription."""

    subtopologies: tuple[SubTopology, ...]
    global_tables: tuple[GlobalTableSpec, ...]
    stores: Mapping[str, StoreSpec]
    internal_topics: Mapping[str, InternalTopicSpec]
    old_value_nodes: frozenset[str] = field(default_factory=frozenset)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stores", MappingProxyType(dict(self.stores)))
        object.__setattr__(self, "internal_topics", MappingProxyType(dict(self.internal_topics)))

    def store_names(self) -> list[str]:
        return sorted(self.stores)

    def bind_serdes(self, application_id: str) -> Topology:
        """This topology with every contextual serde bound to its real topic (see
        :func:`streamtable.serde.bind`): sources and sinks to their topics (internal ones as
        ``<application.id>-<name>``), stores to their changelog topics (an unlogged store to the
        name its changelog would have), as Kafka Streams initialises serdes. Done once by
        ``StreamsApp`` and ``TopologyTestDriver``; returns ``self`` when no serde needs a context
        (plain serdes run as they are, without any wrapper).
        """

        def topic_of(name: str, internal: bool) -> str:
            return f"{application_id}-{name}" if internal else name

        def rebind(spec: _Spec, topic: str) -> _Spec:
            k, v = bind(spec.key_serde, topic, True), bind(spec.value_serde, topic, False)
            if k is spec.key_serde and v is spec.value_serde:
                return spec
            return replace(spec, key_serde=k, value_serde=v)

        def source(spec: SourceSpec) -> SourceSpec:
            return rebind(spec, topic_of(spec.topic, spec.internal))

        def sink(spec: SinkSpec) -> SinkSpec:
            return rebind(spec, topic_of(spec.topic, spec.internal))

        def store(spec: StoreSpec) -> StoreSpec:
            changelog = spec.changelog_topic(application_id)
            return rebind(spec, changelog or f"{application_id}-{spec.name}-changelog")

        subs = tuple(
            replace(
                sub,
                sources=tuple(source(s) for s in sub.sources),
                sinks=tuple(sink(s) for s in sub.sinks),
            )
            for sub in self.subtopologies
        )
        globals_ = tuple(replace(g, source=source(g.source)) for g in self.global_tables)
        stores = {name: store(spec) for name, spec in self.stores.items()}
        unchanged = (
            all(
                a is b
                for old, new in zip(self.subtopologies, subs, strict=True)
                for a, b in zip(old.sources + old.sinks, new.sources + new.sinks, strict=True)
            )
            and all(a.source is b.source for a, b in zip(self.global_tables, globals_, strict=True))
            and all(stores[n] is self.stores[n] for n in stores)
        )
        if unchanged:
            return self
        return replace(self, subtopologies=subs, global_tables=globals_, stores=stores)

    def subtopology_of_store(self, store: str) -> SubTopology | None:
        for sub in self.subtopologies:
            if store in sub.stores:
                return sub
        return None

    def describe(self) -> str:
        lines = ["Topologies:"]
        for sub in self.subtopologies:
            lines.append(f"   Sub-topology: {sub.id}")
            children: dict[str, list[str]] = {}
            for proc in sub.processors:
                for parent in proc.parents:
                    children.setdefault(parent, []).append(proc.name)
            for sink in sub.sinks:
                children.setdefault(sink.parent, []).append(sink.name)
            for src in sub.sources:
                topic = f"<application.id>-{src.topic}" if src.internal else src.topic
                lines.append(f"    Source: {src.name} (topics: [{topic}])")
                lines.append(f"      --> {', '.join(children.get(src.name, [])) or 'none'}")
            for proc in sub.processors:
                stores = f" (stores: [{', '.join(proc.stores)}])" if proc.stores else ""
                lines.append(f"    Processor: {proc.name}{stores}")
                lines.append(f"      --> {', '.join(children.get(proc.name, [])) or 'none'}")
                lines.append(f"      <-- {', '.join(proc.parents)}")
            for sink in sub.sinks:
                topic = f"<application.id>-{sink.topic}" if sink.internal else sink.topic
                lines.append(f"    Sink: {sink.name} (topic: {topic})")
                lines.append(f"      <-- {sink.parent}")
            lines.append("")
        for i, glob in enumerate(self.global_tables):
            lines.append(f"   Global table: {len(self.subtopologies) + i}")
            lines.append(
                f"    Source: {glob.source.name} (topics: [{glob.source.topic}]) "
                f"--> store {glob.store}"
            )
            lines.append("")
        lines.append("Stores:")
        for name in self.store_names():
            spec = self.stores[name]
            changelog = spec.changelog_topic("<application.id>") or "none"
            flags = ("global " if spec.is_global else "") + ("cached" if spec.cached else "")
            lines.append(f"    {name}: changelog {changelog} {flags}".rstrip())
        if self.internal_topics:
            lines.append("Internal topics:")
            for suffix in sorted(self.internal_topics):
                spec_t = self.internal_topics[suffix]
                lines.append(f"    <application.id>-{suffix} ({spec_t.purpose})")
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.describe()

"""Topologies: immutable graphs of sources, processors, sinks and stores, split into
sub-topologies at repartition topics, and the task engine that runs one of them."""

from streamtable.topology._nodes import (
    ChangeSerde,
    GlobalTableSpec,
    InternalTopicSpec,
    ProcessorSpec,
    SinkSpec,
    SourceSpec,
    StoreSpec,
)
from streamtable.topology._partitioner import murmur2, partition_for
from streamtable.topology._schedule import Schedule, Schedules
from streamtable.topology._stores import build_store
from streamtable.topology._task import RecordCollector, TaskCore, TaskHooks
from streamtable.topology._topology import SubTopology, Topology

__all__ = [
    "ChangeSerde",
    "GlobalTableSpec",
    "InternalTopicSpec",
    "ProcessorSpec",
    "RecordCollector",
    "Schedule",
    "Schedules",
    "SinkSpec",
    "SourceSpec",
    "StoreSpec",
    "SubTopology",
    "TaskCore",
    "TaskHooks",
    "Topology",
    "build_store",
    "murmur2",
    "partition_for",
]

"""streamtable: Kafka Streams' table semantics for Python, on a real Kafka cluster.

Example::

    import streamtable as st

    builder = st.StreamsBuilder()
    positions = builder.table("share-holders", key_serde=st.serde.STRING,
                              value_serde=st.serde.JSON, store="share-holder-store")
    holders = (positions
        .filter(lambda key, pos: pos["exchange"] in {"NASDAQ", "NYSE"})
        .group_by(lambda key, pos: (pos["client"], frozenset({key})))
        .reduce(adder=lambda agg, v: agg | v,
                subtractor=lambda agg, v: (agg - v) or None,
                store="us-share-holders"))
    topology = builder.build()
"""

from streamtable import errors, serde
from streamtable.dsl import (
    CogroupedKStream,
    GlobalKTable,
    KGroupedStream,
    KGroupedTable,
    KStream,
    KTable,
    SessionWindowedCogroupedKStream,
    SessionWindowedKStream,
    SlidingWindowedCogroupedKStream,
    StreamJoined,
    StreamsBuilder,
    TimeWindowedCogroupedKStream,
    TimeWindowedKStream,
)
from streamtable.errors import (
    ConfigError,
    CoPartitioningError,
    SerializationError,
    StoreNotFound,
    StoreNotReady,
    StreamTableError,
    TopologyError,
)
from streamtable.processors import Processor, ProcessorContext, PunctuationType, Record
from streamtable.runtime import AppState, StateRestoreListener, StreamsApp, StreamsConfig
from streamtable.state import ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore
from streamtable.suppression import BufferConfig, EmitStrategy, Suppressed
from streamtable.testing import TopologyTestDriver
from streamtable.topology import Topology
from streamtable.windowing import (
    JoinWindows,
    SessionWindow,
    SessionWindows,
    SlidingWindows,
    TimeWindows,
    Window,
    Windowed,
)

__all__ = [
    "AppState",
    "BufferConfig",
    "ConfigError",
    "CoPartitioningError",
    "EmitStrategy",
    "GlobalKTable",
    "JoinWindows",
    "CogroupedKStream",
    "KGroupedStream",
    "KGroupedTable",
    "KStream",
    "KTable",
    "Processor",
    "ProcessorContext",
    "PunctuationType",
    "ReadOnlyKeyValueStore",
    "ReadOnlySessionStore",
    "ReadOnlyWindowStore",
    "Record",
    "SerializationError",
    "SessionWindow",
    "SessionWindowedCogroupedKStream",
    "SessionWindowedKStream",
    "SessionWindows",
    "SlidingWindowedCogroupedKStream",
    "SlidingWindows",
    "StoreNotFound",
    "StoreNotReady",
    "StreamTableError",
    "StateRestoreListener",
    "StreamJoined",
    "StreamsApp",
    "StreamsBuilder",
    "StreamsConfig",
    "Suppressed",
    "TimeWindowedCogroupedKStream",
    "TimeWindowedKStream",
    "TimeWindows",
    "Topology",
    "TopologyError",
    "TopologyTestDriver",
    "Window",
    "Windowed",
    "errors",
    "serde",
]

__version__ = "0.1.0"

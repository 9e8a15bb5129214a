"""The DSL: StreamsBuilder, KTable, KGroupedTable, KStream, KGroupedStream, TimeWindowedKStream,
SessionWindowedKStream, CogroupedKStream (and its windowed forms), GlobalKTable.

DSL objects only describe; ``StreamsBuilder.build()`` turns the description into a Topology.
"""

from streamtable.dsl._builder import StreamsBuilder
from streamtable.dsl._cogroup import CogroupedKStream
from streamtable.dsl._cogroup_windowed import (
    SessionWindowedCogroupedKStream,
    SlidingWindowedCogroupedKStream,
    TimeWindowedCogroupedKStream,
)
from streamtable.dsl._grouped_stream import KGroupedStream
from streamtable.dsl._session import SessionWindowedKStream
from streamtable.dsl._stream import GlobalKTable, KStream
from streamtable.dsl._stream_join import StreamJoined
from streamtable.dsl._table import KGroupedTable, KTable
from streamtable.dsl._windowed import TimeWindowedKStream

__all__ = [
    "CogroupedKStream",
    "GlobalKTable",
    "KGroupedStream",
    "KGroupedTable",
    "KStream",
    "KTable",
    "SessionWindowedCogroupedKStream",
    "SessionWindowedKStream",
    "SlidingWindowedCogroupedKStream",
    "StreamJoined",
    "StreamsBuilder",
    "TimeWindowedCogroupedKStream",
    "TimeWindowedKStream",
]

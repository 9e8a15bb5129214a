"""W6's topology in streamtable (run by ``python -m bench.runner streamtable --topology w6``).

Trades keyed by client (JSON ``{"client", "amount"}``, event time in the record timestamp) ->
per client, ``{"count", "total"}`` (the sum of amounts) in 1-minute tumbling windows (to
``output_topic``) and in 5-minute windows hopping by 1 minute (to ``output_topic-hopping``),
each with a 10-second grace; keys ``st.Windowed`` (the client's bytes + the window start as 8
big-endian bytes, Kafka Streams' time-windowed serde). The same as Kafka Streams' W6Topology
(bench/reference) and bench/peers/quixstreams_w6.py.
"""

from __future__ import annotations

from datetime import timedelta

import streamtable as st
from streamtable.serde import JSON, STRING

GRACE = timedelta(seconds=10)
HOPPING_SUFFIX = "-hopping"


def w6_topology(input_topic: str, output_topic: str) -> st.Topology:
    b = st.StreamsBuilder()
    by_client = b.stream(input_topic, key_serde=STRING, value_serde=JSON).group_by_key()
    minute = timedelta(minutes=1)
    for windows, store, output in (
        (st.TimeWindows.of_size_and_grace(minute, GRACE), "w6-tumbling", output_topic),
        (
            st.TimeWindows.of_size_and_grace(5 * minute, GRACE).advance_by(minute),
            "w6-hopping",
            output_topic + HOPPING_SUFFIX,
        ),
    ):
        by_client.windowed_by(windows).aggregate(
            lambda: {"count": 0, "total": 0},
            lambda client, trade, agg: {
                "count": agg["count"] + 1,
                "total": agg["total"] + trade["amount"],
            },
            store=store,
            value_serde=JSON,
        ).to_stream().to(output)
    return b.build()

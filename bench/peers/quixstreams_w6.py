"""W6 in Quix Streams (run by bench/w6.py inside Quix's own virtualenv).

Trades keyed by client (JSON ``{"client", "amount"}``, event time in the record timestamp) ->
per client, the count and the sum of amounts in 1-minute tumbling windows (to ``--output``) and
in 5-minute windows hopping by 1 minute (to ``--output``-hopping), each with a 10-second grace,
emitted on every update (``.current()``, as a Kafka Streams windowed KTable). The values are
Quix's window results ``{"start", "end", "count", "total"}``, keyed by the client.

Runs until SIGTERM, committing to Kafka under the consumer group ``--app-id``.
"""

import argparse
from datetime import timedelta

import quixstreams.dataframe.windows.aggregations as agg
from quixstreams import Application

GRACE = timedelta(seconds=10)


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--input", "--output", "--app-id", "--state-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--commit-interval-ms", type=int, default=1000)
    args = parser.parse_args()
    app = Application(
        broker_address=args.bootstrap,
        consumer_group=args.app_id,
        auto_offset_reset="earliest",
        commit_interval=args.commit_interval_ms / 1000,
        state_dir=args.state_dir,
        loglevel="WARNING",
    )
    trades = app.topic(args.input, key_deserializer="str", value_deserializer="json")
    sdf = app.dataframe(trades)
    tumbling = sdf.tumbling_window(timedelta(minutes=1), grace_ms=GRACE, name="tumbling")
    hopping = sdf.hopping_window(
        timedelta(minutes=5), step_ms=timedelta(minutes=1), grace_ms=GRACE, name="hopping"
    )
    for windows, output in ((tumbling, args.output), (hopping, f"{args.output}-hopping")):
        topic = app.topic(output, key_serializer="str", value_serializer="json")
        windows.agg(count=agg.Count(), total=agg.Sum("amount")).current().to_topic(topic)
    app.run()


if __name__ == "__main__":
    main()

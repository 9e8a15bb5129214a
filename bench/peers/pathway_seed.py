"""The seed topology in Pathway (run by bench/peer_run.py inside its own virtualenv).

Pathway's Kafka reader gives an append-only table of messages (key, payload); Pathway has no
upsert-by-message-key for it, so the few lines marked "tombstone" below turn the messages into
the positions table: each position's latest message (by offset: one key, one partition), and
an empty payload (what a tombstone reads as) means the position is closed. From there it is
Pathway's incremental engine: US positions, ``groupby`` client, ``sorted_tuple`` of ids, and
the engine retracts what moved. The changes are written with ``pw.io.subscribe`` and a
confluent-kafka producer (Pathway's own Kafka writer sends every retraction as a message of
its own, with the old value): key client id, value the JSON sorted list of ids, a tombstone
when a client has none left.

The reader runs in static mode: it reads what the topic holds, then the computation ends,
the producer flushes and ``DONE`` is printed. The program then waits for SIGTERM so that its
CPU time and peak RSS can be read.
"""

import argparse
import json
import signal

import pathway as pw
from confluent_kafka import Producer

US = frozenset({"NASDAQ", "NYSE"})


@pw.udf
def us_client(payload: str) -> str | None:
    """The client whose US set holds a position, or None (closed, or not on a US venue)."""
    if not payload:  # tombstone: a closed position
        return None
    position = json.loads(payload)
    return position["client"] if position["exchange"] in US else None


def holders_table(args):
    messages = pw.io.kafka.read(
        {"bootstrap.servers": args.bootstrap, "group.id": args.app_id},
        args.input,
        format="plaintext",
        mode="static",
        with_metadata=True,
        autogenerate_key=True,
    )
    # tombstone: the latest message of each position wins; an empty one is a delete
    latest = messages.groupby(pw.this.key).reduce(
        position=pw.this.key,
        last=pw.reducers.max(pw.make_tuple(pw.this._metadata["offset"].as_int(), pw.this.data)),
    )
    held = latest.select(pw.this.position, client=us_client(pw.this.last[1]))
    held = held.filter(pw.this.client.is_not_none())
    return held.groupby(pw.this.client).reduce(
        pw.this.client, ids=pw.reducers.sorted_tuple(pw.this.position)
    )


class KafkaWriter:
    """Each client's new set (or a tombstone) once per closed Pathway time."""

    def __init__(self, bootstrap, topic):
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        self.topic = topic
        self.pending = {}

    def on_change(self, key, row, time, is_addition):
        # an update is a retraction and an addition at the same time, in either order
        if is_addition:
            self.pending[row["client"]] = list(row["ids"])
        else:
            self.pending.setdefault(row["client"], None)

    def on_time_end(self, time):
        for client, ids in self.pending.items():
            value = None if ids is None else json.dumps(ids).encode()
            self.producer.produce(self.topic, key=client.encode(), value=value)
            self.producer.poll(0)
        self.pending.clear()

    def on_end(self):
        self.on_time_end(None)
        self.producer.flush()


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--input", "--output", "--app-id", "--state-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--commit-interval-ms", type=int, default=1000)
    args = parser.parse_args()
    writer = KafkaWriter(args.bootstrap, args.output)
    pw.io.subscribe(
        holders_table(args),
        on_change=writer.on_change,
        on_time_end=writer.on_time_end,
        on_end=writer.on_end,
    )
    pw.run(monitoring_level=pw.MonitoringLevel.NONE)
    print("DONE", flush=True)
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)


if __name__ == "__main__":
    main()

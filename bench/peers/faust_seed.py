"""The seed topology in Faust (faust-streaming; run by bench/peer_run.py in its own virtualenv).

Positions (key: position id, JSON value, a tombstone closes it) -> an agent keeping, in a
table keyed by position, the client whose US set holds it, which sends each retraction and
addition to a topic keyed by client (Faust's way to repartition: tables must be co-partitioned
with their stream) -> an agent keeping, in a table keyed by client, the set of US position ids
-> the output topic: key client id, value the JSON sorted list of ids, a tombstone when empty.

Runs as a Faust worker until SIGTERM, committing to Kafka under the consumer group
``--app-id`` (Faust's application id). Tables use Faust's default store (in memory, backed by
changelog topics).
"""

import argparse
import json

import faust

US = frozenset({"NASDAQ", "NYSE"})


def build(args):
    app = faust.App(
        args.app_id,
        broker=f"kafka://{args.bootstrap}",
        datadir=args.state_dir,
        topic_partitions=args.partitions,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=args.commit_interval_ms / 1000,
        web_enabled=False,
    )
    positions = app.topic(args.input, key_serializer="raw", value_serializer="raw")
    changes = app.topic(
        f"{args.app_id}-by-client",
        key_type=str,
        value_serializer="json",
        partitions=args.partitions,
        internal=True,
    )
    output = app.topic(args.output, key_serializer="raw", value_serializer="raw")
    client_of = app.Table("us-position-client", partitions=args.partitions)
    holders = app.Table("us-holders", partitions=args.partitions)

    @app.agent(positions)
    async def regroup(stream):
        async for event in stream.events():
            position = event.key.decode()
            value = None if event.value is None else json.loads(event.value)
            new = value["client"] if value is not None and value["exchange"] in US else None
            old = client_of.get(position)
            if new == old:
                continue
            if new is None:
                del client_of[position]
            else:
                client_of[position] = new
            if old is not None:
                await changes.send(key=old, value={"id": position, "held": False})
            if new is not None:
                await changes.send(key=new, value={"id": position, "held": True})

    @app.agent(changes)
    async def collect(stream):
        async for event in stream.events():
            client, change = event.key, event.value
            ids = set(holders.get(client, ()))
            if change["held"]:
                ids.add(change["id"])
            else:
                ids.discard(change["id"])
            if ids:
                holders[client] = sorted(ids)
                value = json.dumps(holders[client]).encode()
            else:
                holders.pop(client, None)
                value = None
            await output.send(key=client.encode(), value=value)

    return app


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--input", "--output", "--app-id", "--state-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--commit-interval-ms", type=int, default=1000)
    parser.add_argument("--partitions", type=int, required=True)
    args = parser.parse_args()
    faust.Worker(build(args), loglevel="WARNING", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()

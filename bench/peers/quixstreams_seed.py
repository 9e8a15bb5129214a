"""The seed topology in Quix Streams (run by bench/peer_run.py inside its own virtualenv).

Positions (key: position id, JSON value, a tombstone closes it) -> per position, the client
whose US set holds it (a Quix state store) -> ``group_by`` client (Quix's repartition topic)
-> per client, the set of US position ids (a state store) -> the output topic: key client id,
value the JSON sorted list of ids, a tombstone when the set becomes empty.

Runs until SIGTERM, committing to Kafka under the consumer group ``--app-id``.
"""

import argparse

from quixstreams import Application
from quixstreams.models.serializers import JSONSerializer

US = frozenset({"NASDAQ", "NYSE"})


class TombstoneJSON(JSONSerializer):
    """JSON, except that ``None`` is sent as a tombstone (Quix would write ``null``)."""

    def __call__(self, value, ctx):
        return None if value is None else super().__call__(value, ctx)


def membership(value, key, timestamp, headers, state):
    """Keyed by position: the retraction from the old client and the addition to the new one."""
    old = state.get("client")
    new = value["client"] if value is not None and value["exchange"] in US else None
    if new == old:
        return []
    if new is None:
        state.delete("client")
    else:
        state.set("client", new)
    changes = []
    if old is not None:
        changes.append({"client": old, "id": key, "held": False})
    if new is not None:
        changes.append({"client": new, "id": key, "held": True})
    return changes


def holdings(change, state):
    """Keyed by client: the sorted set of its US position ids, or ``None`` once it is empty."""
    ids = set(state.get("ids", ()))
    if change["held"]:
        ids.add(change["id"])
    else:
        ids.discard(change["id"])
    if not ids:
        state.delete("ids")
        return None
    held = sorted(ids)
    state.set("ids", held)
    return held


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
    positions = app.topic(args.input, key_deserializer="str", value_deserializer="json")
    output = app.topic(args.output, key_serializer="str", value_serializer=TombstoneJSON())
    sdf = app.dataframe(positions)
    sdf = sdf.apply(membership, stateful=True, expand=True, metadata=True)
    sdf = sdf.group_by(lambda change: change["client"], name="client")
    sdf = sdf.apply(holdings, stateful=True)
    sdf.to_topic(output)
    app.run()


if __name__ == "__main__":
    main()

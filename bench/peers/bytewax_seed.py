"""The seed topology in Bytewax (run by bench/peer_run.py inside its own virtualenv).

Positions (key: position id, JSON value, a tombstone closes it) -> ``stateful_map`` keyed by
position: the client whose US set holds it -> the changes re-keyed by client (Bytewax routes
keyed state by key between workers) -> ``stateful_map`` keyed by client: its set of US position
ids -> ``KafkaSink``: key client id, value the JSON sorted list of ids, a tombstone when empty.

Bytewax has no table semantics: a tombstone arrives as a message whose value is ``None``; the
few lines marked "tombstone" below turn it into a delete (the position's state is dropped and
the client it counted for loses it). The source reads every partition to its end
(``tail=False``); then the dataflow ends, the sink flushes, and ``DONE`` is printed. The
program then waits for SIGTERM so that its CPU time and peak RSS can be read.
"""

import argparse
import json
import signal

import bytewax.operators as op
from bytewax.connectors.kafka import KafkaSink, KafkaSinkMessage, KafkaSource
from bytewax.dataflow import Dataflow
from bytewax.run import cli_main

US = frozenset({"NASDAQ", "NYSE"})


def membership(old_client, value):
    """Keyed by position: (new state, the changes to send to the clients' sets)."""
    # tombstone: a closed position holds no client, like one that left the US venues
    new_client = value["client"] if value is not None and value["exchange"] in US else None
    if new_client == old_client:
        return old_client, []
    changes = []
    if old_client is not None:
        changes.append((old_client, (False, None)))
    if new_client is not None:
        changes.append((new_client, (True, None)))
    return new_client, changes  # a None state is discarded by Bytewax: the delete


def holdings(ids, change):
    """Keyed by client: (its set of ids, or None once empty; the value to write)."""
    held, position = change
    ids = ids if ids is not None else set()
    if held:
        ids.add(position)
    else:
        ids.discard(position)
    return (ids or None), (sorted(ids) or None)


def build(args):
    flow = Dataflow("seed")
    messages = op.input("positions", flow, KafkaSource([args.bootstrap], [args.input], tail=False))
    positions = op.map(
        "decode",
        messages,
        # tombstone: a None value stays None instead of being parsed
        lambda m: (m.key.decode(), None if m.value is None else json.loads(m.value)),
    )
    changes = op.stateful_map("membership", positions, membership)
    by_client = op.flat_map(
        "by_client",
        changes,
        lambda kv: [(client, (held, kv[0])) for client, (held, _) in kv[1]],
    )
    sets = op.stateful_map("holdings", by_client, holdings)
    out = op.map(
        "encode",
        sets,
        lambda kv: KafkaSinkMessage(
            kv[0].encode(), None if kv[1] is None else json.dumps(kv[1]).encode()
        ),
    )
    op.output("out", out, KafkaSink([args.bootstrap], args.output))
    return flow


def main():
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--input", "--output", "--app-id", "--state-dir"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--commit-interval-ms", type=int, default=1000)
    args = parser.parse_args()
    cli_main(build(args), workers_per_process=1)
    print("DONE", flush=True)
    stop = {signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    signal.sigwait(stop)


if __name__ == "__main__":
    main()

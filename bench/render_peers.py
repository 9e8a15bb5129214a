"""The Python peers' section of ``bench/RESULTS.md`` (none for results without peers).

bench/render.py puts it after the W3/W5 table:

    lines = peers_markdown(results)
"""

from __future__ import annotations

from collections.abc import Sequence

from bench.peer_env import PEERS, parse_pin
from bench.results import CORRECT, BenchResults, Num, PeerRun, W1Run

HEADER = (
    "| implementation | records/s | CPU s per million records | peak RSS (MiB) "
    "| lines of user code | oracle |"
)


def fmt(value: object, digits: int = 0) -> str:
    """A figure for a table: thousands separated, ``digits`` decimals, ``n/a`` for ``None``
    (bench/render.py's tables use it too)."""
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def oracle_of(runs: Sequence[W1Run]) -> str:
    """One verdict for a W1 figure's runs: the first wrong one, correct, or not checked."""
    verdicts = [r.oracle for r in runs if r.oracle is not None]
    if not verdicts:
        return "not checked"
    return next((v for v in verdicts if v != CORRECT), CORRECT)


def per_million(cpu_s: Num | None, records: int) -> float | None:
    return None if cpu_s is None or not records else cpu_s / records * 1e6


def peer_title(run: PeerRun) -> str:
    peer = PEERS.get(run.peer)
    title = peer.title if peer else run.peer
    return f"{title} {parse_pin(run.pins[0]).version}"


def _row(name: str, rps: object, cpu: object, rss: object, lines: object, oracle: str) -> str:
    oracle = oracle if len(oracle) <= 200 else oracle[:200] + "..."
    return (
        f"| {name} | {fmt(rps)} | {fmt(cpu, 1)} | {fmt(rss, 1)} | {fmt(lines)} "
        f"| {oracle.replace('|', '/')} |"
    )


def peers_markdown(results: BenchResults) -> list[str]:
    """The table (streamtable and Kafka Streams from W1 at_least_once, then each peer) and how
    the peers were run."""
    peers = results.peers
    if peers is None:
        return []
    w1, w4, n = results.w1, results.w4, results.records
    lines = [
        "## The Python peers",
        "",
        f"The seed topology on W1's input ({peers.records:,} records), at_least_once, one "
        "process each; every output topic read back to its end and compared with the oracle. "
        "streamtable and Kafka Streams: their W1 at_least_once figures from the same run.",
        "",
        HEADER,
        "| --- | ---: | ---: | ---: | ---: | --- |",
        _row("streamtable", w1.streamtable_alos_rps, per_million(w1.streamtable_alos_cpu_s, n),
             w4.streamtable_rss_mb, peers.streamtable_code_lines,
             oracle_of([r.st_alos for r in results.runs])),
        _row(f"Kafka Streams {fmt(results.machine.kafka)}", w1.kstreams_alos_rps,
             per_million(w1.kstreams_alos_cpu_s, n), w4.kstreams_rss_mb, None,
             oracle_of([r.ks_alos for r in results.runs])),
    ]  # fmt: skip
    for run in peers.runs:
        lines.append(
            _row(peer_title(run), run.rps, run.cpu_s_per_million, run.peak_rss_mb,
                 run.code_lines, run.verdict)
        )  # fmt: skip
    return [*lines, "", *PEER_NOTES, ""]


PEER_NOTES = (
    "* **How each peer runs** (`bench/peer_run.py`): `bench/peers/<peer>_seed.py` with the "
    "interpreter of its own virtualenv (`.cache/bench-venvs/<distribution>-<version>/`, "
    "created by the bench from the pins in `bench/peer_env.py` on first use), a fresh "
    "application id / consumer group and the at_least_once commit interval. The clock runs "
    "from the spawn until the peer is done: Quix Streams and Faust commit to Kafka, so when "
    "their consumer group has committed the input and their repartition topic to the end "
    "(polled every 0.1 s); Bytewax (`KafkaSource(tail=False)`) and Pathway "
    '(`pw.io.kafka.read(mode="static")`) stop at the end of their input by themselves, '
    "flush their output and print `DONE` (its arrival stops the clock). CPU: user + system "
    "seconds of the peer's process tree then; RSS: the sum of its processes' `VmHWM`. Then "
    "its output topic is read to the end (the last value of each key; a tombstone removes "
    "the client) and compared with the final per-client sets that `bench/oracle.py` "
    "computes by replaying the generated input (read again up to 3 times, 2 s apart, while "
    "it differs). A peer that fails to install, exits, is not done within `BENCH_TIMEOUT_S`"
    " or writes a wrong result is shown as such, with no figures.",
    "* **Each topology** keeps its state in the peer's own facilities and re-keys by client "
    "through the peer's own repartitioning: Quix Streams `apply(stateful=True)` + "
    "`group_by` (its `repartition__` topic); Faust tables + a topic keyed by client "
    "(tables must be co-partitioned with their stream), default in-memory stores with "
    "changelogs; Bytewax `stateful_map` keyed by position, then by client (one worker); "
    "Pathway `groupby().reduce()` with `sorted_tuple` (one engine thread), the engine "
    "retracting what moved. None of the hand-written peers has table semantics: each keeps "
    "the client a position counts for and sends a retraction when it moves, leaves the US "
    "venues or closes; they forward a change to the client stage only when a position's "
    "membership changes (an amount update stops there), where streamtable and Kafka Streams "
    "(KTable group_by) forward every update of a US position through the repartition topic.",
    "* **Tombstones**: Bytewax hands a tombstone over as a message whose value is `None`, "
    "and Pathway's Kafka reader as a row with an empty payload appended to the others "
    "(it has no upsert by message key): in both a few lines, marked `tombstone` in "
    "`bench/peers/bytewax_seed.py` and `bench/peers/pathway_seed.py`, turn it into a "
    "delete (Pathway: the latest message of each key by offset, an empty one dropped). "
    "Pathway's own Kafka writer sends each retraction as a message with the old value, so "
    "its output goes through `pw.io.subscribe` and a confluent-kafka producer (one message "
    "per changed client per Pathway time, a tombstone for an empty set). Quix writes "
    "`null` for `None`, so its output topic has a serializer that sends a tombstone instead.",
    "* **Lines of user code**: non-blank lines that are not only a comment or part of a "
    "docstring, counted by `bench/peer_env.py`: a peer's whole program (the topology, its "
    "configuration and command line); for streamtable, `seed_topology` in "
    "`bench/runner.py` (its configuration and command line, in the same file, are not "
    "counted).",
)

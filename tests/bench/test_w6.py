"""W6 (windowed counts and sums): its trades, its oracle, its output decoding and its section."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from bench.datagen import DataSettings
from bench.render_w6 import w6_markdown
from bench.results import CORRECT, Extras, Failure, Machine
from bench.results_w6 import W6Result, W6Run
from bench.runner import build_parser
from bench.settings import Settings
from bench.summary import summarize
from bench.w6 import JITTER_MS, MINUTE_MS, Trades, expected, quix_key, windowed_key
from bench.w6_topology import GRACE, HOPPING_SUFFIX, w6_topology

import streamtable as st
from streamtable.serde import JSON, STRING, TimeWindowedSerde
from tests.bench.sections import assert_round_trip_before_machine

pytestmark = pytest.mark.unit

MACHINE = Machine(
    nproc=2, memory_gib=1.0, cpu_model="x", python="3", java="j", kernel="k", kafka="4.3.1"
)
SETTINGS = Settings(DataSettings(records=20_000), 1, 60.0, 1000, 100, 1024)
TRADES = Trades(records=3_000, clients=7, start_ms=1_000 * MINUTE_MS)


def test_trades_are_repeatable_out_of_order_and_never_later_than_the_grace() -> None:
    trades = list(TRADES)
    assert trades == list(TRADES)
    assert len(trades) == 3_000
    stream_time = 0
    behind = 0
    for _, amount, ts in trades:
        assert ts >= TRADES.start_ms
        assert 1 <= amount < 1000
        behind = max(behind, stream_time - ts)
        stream_time = max(stream_time, ts)
    assert 0 < behind < JITTER_MS < GRACE.total_seconds() * 1000


def test_the_oracle_counts_each_trade_in_one_tumbling_and_five_hopping_windows() -> None:
    tumbling, hopping = expected(TRADES)
    trades = list(TRADES)
    assert sum(c for c, _ in tumbling.values()) == len(trades)
    assert sum(c for c, _ in hopping.values()) == 5 * len(trades)
    assert sum(t for _, t in tumbling.values()) == sum(a for _, a, _ in trades)
    # brute force: a hopping window [start, start + 5 min) holds the trades in it
    client, start = next(iter(hopping))
    inside = [a for c, a, ts in trades if c == client and start <= ts < start + 5 * MINUTE_MS]
    assert hopping[(client, start)] == (len(inside), sum(inside))
    assert all(s % MINUTE_MS == 0 for _, s in hopping)


def test_the_oracle_matches_streamtables_topology_in_the_test_driver() -> None:
    trades = Trades(records=400, clients=3, start_ms=2_000 * MINUTE_MS)
    tumbling, hopping = expected(trades)
    with st.TopologyTestDriver(w6_topology("t", "o")) as driver:
        source = driver.input_topic("t", key_serde=STRING, value_serde=JSON)
        for client, amount, ts in trades:
            source.pipe(client, {"client": client, "amount": amount}, timestamp=ts)
        for topic, truth, size in (
            ("o", tumbling, MINUTE_MS),
            ("o" + HOPPING_SUFFIX, hopping, 5 * MINUTE_MS),
        ):
            serde = TimeWindowedSerde(STRING, size)
            out = driver.output_topic(topic, key_serde=serde, value_serde=JSON)
            last = {
                (k.key, k.window.start_ms): (v["count"], v["total"])
                for k, v in out.read_key_values_to_dict().items()
            }
            assert last == truth


def test_output_keys_decode_to_client_and_window_start() -> None:
    key = b"c12" + (5 * MINUTE_MS).to_bytes(8, "big")
    assert windowed_key(key, {}) == ("c12", 5 * MINUTE_MS)
    assert quix_key(b"c12", {"start": 60_000, "end": 120_000}) == ("c12", 60_000)
    with pytest.raises(ValueError, match="time-windowed"):
        windowed_key(b"short", {})
    with pytest.raises(ValueError, match="without a key"):
        quix_key(None, {"start": 0})


def test_the_runner_takes_the_w6_topology() -> None:
    args = build_parser().parse_args(["streamtable", "--bootstrap", "b", "--input", "i"])
    assert args.topology == "seed"
    args = build_parser().parse_args(
        ["streamtable", "--bootstrap", "b", "--input", "i", "--topology", "w6"]
    )
    assert args.topology == "w6"


def w6_result(quix_oracle: str = CORRECT) -> W6Result:
    def run(name: str, rps: float, cpu: float, oracle: str = CORRECT) -> W6Run:
        return W6Run(
            implementation=name,
            label=f"w6-{name}",
            oracle=oracle,
            elapsed_s=1.0,
            rps=rps,
            cpu_s=cpu,
            cpu_us_per_record=cpu,
            peak_rss_mb=100.0,
            output_records=10,
            code_lines=20,
        )

    return W6Result(
        records=1_000,
        clients=10,
        partitions=4,
        span_s=6.0,
        tumbling_windows=50,
        hopping_windows=250,
        quixstreams_pin="quixstreams==3.28.1",
        runs=[
            run("streamtable", 30_000.0, 10.0),
            run("kstreams", 20_000.0, 20.0),
            run("quixstreams", 10_000.0, 40.0, quix_oracle),
        ],
    )


def test_the_section_has_each_implementation_and_streamtables_ratios(tmp_path: Path) -> None:
    results = summarize(SETTINGS, [], MACHINE, Extras(w6=w6_result()))
    lines = w6_markdown(results)
    assert lines[0] == "## W6: windowed counts and sums"
    assert any(line.startswith("| Quix Streams 3.28.1 | 10,000 |") for line in lines)
    assert (
        "streamtable against Kafka Streams: 1.50x its records/s at 0.50x its CPU per record; "
        "Quix Streams 3.28.1: 3.00x its records/s at 0.25x its CPU per record."
    ) in lines
    assert_round_trip_before_machine(results, tmp_path, "## W6")


def test_a_wrong_peer_has_no_ratio_and_a_failed_w6_says_why() -> None:
    wrong = w6_markdown(summarize(SETTINGS, [], MACHINE, Extras(w6=w6_result("wrong: 1 missing"))))
    assert "wrong: 1 missing" in "".join(wrong)
    assert "Quix Streams 3.28.1: " not in "".join(line for line in wrong if "against" in line)
    failed = w6_markdown(summarize(SETTINGS, [], MACHINE, Extras(w6=Failure(error="boom"))))
    assert failed == ["## W6: windowed counts and sums", "", "W6 failed: boom", ""]
    assert w6_markdown(summarize(SETTINGS, [], MACHINE)) == []
    assert Counter(r.implementation for r in w6_result().runs)["streamtable"] == 1

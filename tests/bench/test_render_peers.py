"""The Python peers' section of RESULTS.md: figures for a correct peer, the reason otherwise."""

from __future__ import annotations

import pytest
from bench.datagen import DataSettings
from bench.render import render_markdown
from bench.render_peers import oracle_of, peers_markdown
from bench.results import CORRECT, BenchResults, Machine, PeerRun, PeersResult, W1Run
from bench.settings import Settings
from bench.summary import summarize

pytestmark = pytest.mark.unit

MACHINE = Machine(
    nproc=2, memory_gib=1.0, cpu_model="x", python="3", java="j", kernel="k", kafka="4.3.1"
)


def peer(name: str, pin: str, verdict: str, **figures: float) -> PeerRun:
    return PeerRun.model_validate(
        {
            "peer": name,
            "pins": [pin],
            "completion": "how",
            "records": 20_000,
            "code_lines": 60,
            "verdict": verdict,
            **figures,
        }
    )


def results_with_peers() -> BenchResults:
    settings = Settings(DataSettings(records=20_000), 1, 60.0, 1000, 100, 1024)
    peers = PeersResult(
        records=20_000,
        streamtable_code_lines=15,
        runs=[
            peer("bytewax", "bytewax[kafka]==0.21.1", CORRECT, rps=16427.9,
                 cpu_s_per_million=19.5, peak_rss_mb=59.7),
            peer("faust", "faust-streaming==0.15.3", "failed: not done after 60s (7/9 committed)"),
            peer("pathway", "pathway==0.33.0", "wrong: 1 missing | of 2 expected clients"),
        ],
    )  # fmt: skip
    results = summarize(settings, [], MACHINE)
    return results.model_copy(update={"peers": peers})


def test_a_correct_peer_has_its_figures_and_a_failed_or_wrong_one_its_reason() -> None:
    lines = peers_markdown(results_with_peers())
    assert lines[0] == "## The Python peers"
    assert "| Bytewax 0.21.1 | 16,428 | 19.5 | 59.7 | 60 | correct |" in lines
    assert (
        "| Faust 0.15.3 | n/a | n/a | n/a | 60 | failed: not done after 60s (7/9 committed) |"
        in lines
    )
    # a "|" in a reason must not break the table
    assert (
        "| Pathway 0.33.0 | n/a | n/a | n/a | 60 | wrong: 1 missing / of 2 expected clients |"
        in (lines)
    )
    assert "| streamtable | n/a | n/a | n/a | 15 | not checked |" in lines


def test_the_section_is_in_results_md_and_survives_the_json() -> None:
    results = results_with_peers()
    again = BenchResults.model_validate_json(results.to_json())
    assert again == results
    text = render_markdown(again, "stamp", 1.0)
    assert "| Bytewax 0.21.1 | 16,428 | 19.5 | 59.7 | 60 | correct |" in text
    assert text.index("## The Python peers") < text.index("## Machine")


def test_results_without_peers_have_no_section() -> None:
    results = summarize(Settings(DataSettings(records=10), 1, 60.0, 1000, 100, 1024), [], MACHINE)
    assert peers_markdown(results) == []
    assert "Python peers" not in render_markdown(results, "stamp", 1.0)
    assert "peers" not in results.to_json()


def test_w1_runs_verdict() -> None:
    def run(oracle: str | None) -> W1Run:
        return W1Run(
            label="st", app_id="a", guarantee="g", elapsed_s=1, rps=1,
            startup_to_running_s=None, peak_rss_mb=None, oracle=oracle,
        )  # fmt: skip

    assert oracle_of([run(None)]) == "not checked"
    assert oracle_of([run(CORRECT), run(None)]) == CORRECT
    assert oracle_of([run(CORRECT), run("wrong: x")]) == "wrong: x"

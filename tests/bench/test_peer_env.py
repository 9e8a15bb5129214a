"""The peers' pins, their selection, their programs and the lines-of-code counter."""

from __future__ import annotations

from pathlib import Path

import pytest
from bench.peer_env import (
    PEERS,
    PeerFailure,
    Pin,
    code_lines,
    ensure_venv,
    parse_pin,
    selected_peers,
)

pytestmark = pytest.mark.unit


def test_exact_pins_are_parsed_with_their_extras() -> None:
    assert parse_pin("quixstreams==3.28.1") == Pin("quixstreams", "3.28.1")
    assert parse_pin(" bytewax[kafka]==0.21.1 ") == Pin("bytewax", "0.21.1", ("kafka",))
    assert parse_pin("a.b_c[x, y]==1.0rc1") == Pin("a.b_c", "1.0rc1", ("x", "y"))


@pytest.mark.parametrize("spec", ["quixstreams", "quixstreams>=3", "pathway==", "==1.0", "x==1 y"])
def test_anything_but_an_exact_pin_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="not an exact pin"):
        parse_pin(spec)


def test_every_peer_is_pinned_and_has_its_program() -> None:
    assert set(PEERS) == {"quixstreams", "bytewax", "pathway", "faust"}
    for peer in PEERS.values():
        assert all(parse_pin(spec) for spec in peer.pins)
        assert peer.program.is_file(), peer.program
        assert "import streamtable" not in peer.program.read_text()
    assert PEERS["faust"].venv_name == "faust-streaming-0.15.3"
    assert PEERS["bytewax"].venv_name == "bytewax-0.21.1"


def test_how_each_peer_is_seen_done() -> None:
    assert PEERS["bytewax"].completion.startswith("its own end of input")
    assert PEERS["quixstreams"].completion.endswith("repartition__<group>--*")
    assert PEERS["faust"].internal_topic == "{app}-by-client"


def test_bench_peers_selects_in_order_and_refuses_unknown_names() -> None:
    assert selected_peers("") == ("quixstreams", "bytewax", "pathway", "faust")
    assert selected_peers(" Faust, bytewax,faust ") == ("faust", "bytewax")
    with pytest.raises(SystemExit, match="unknown peers \\['flink'\\]"):
        selected_peers("bytewax,flink")


def test_code_lines_skip_blanks_comments_and_docstrings() -> None:
    source = '''"""Module docstring,
over two lines."""

import json  # a trailing comment keeps its line

# a comment alone


def f(x):
    """Its docstring."""
    text = """a string that is
    no docstring"""
    return json.dumps(
        [x, text]
    )


class C:
    """Doc."""

    value = 1
'''
    assert code_lines(source) == 9


def test_a_venv_that_cannot_be_created_is_a_peer_failure(tmp_path: Path) -> None:
    (tmp_path / "bytewax-0.21.1").write_text("a file where the virtualenv should be")
    log = tmp_path / "pip.log"
    with pytest.raises(PeerFailure, match=r"python -m venv failed \(exit 1\); see .*pip\.log"):
        ensure_venv(PEERS["bytewax"], tmp_path, log)
    assert log.read_text()  # venv's complaint, for the reader of the report

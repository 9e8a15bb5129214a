"""The Python peers: what each one is, its pinned virtualenv, and its lines of user code.

Each peer is a program in ``bench/peers/<name>_seed.py`` run by the interpreter of its own
virtualenv, ``.cache/bench-venvs/<distribution>-<version>/``, created from the peer's pins on
first use (``python -m venv`` + ``pip install``) and reused while the pinned versions are the
ones installed. A failed install raises :class:`PeerFailure`, which the bench reports as that
peer's failure.

    python = ensure_venv(PEERS["quixstreams"], REPO / ".cache" / "bench-venvs", log_path)
"""

from __future__ import annotations

import ast
import io
import json
import re
import subprocess
import sys
import tokenize
from dataclasses import dataclass
from pathlib import Path

PROGRAMS = Path(__file__).resolve().parent / "peers"

_PIN = re.compile(
    r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(?:\[(?P<extras>[A-Za-z0-9_., -]+)\])?"
    r"==(?P<version>[A-Za-z0-9._+!-]+)$"
)


class PeerFailure(Exception):
    """A peer could not be installed or run; the message says why (reported, not raised on)."""


@dataclass(frozen=True)
class Pin:
    """One ``name[extras]==version`` requirement."""

    name: str
    version: str
    extras: tuple[str, ...] = ()


def parse_pin(spec: str) -> Pin:
    """``"bytewax[kafka]==0.21.1"`` -> ``Pin("bytewax", "0.21.1", ("kafka",))``; only exact
    pins are accepted (a benchmark must say what it measured)."""
    match = _PIN.match(spec.strip())
    if match is None:
        raise ValueError(f"not an exact pin (name[extras]==version): {spec!r}")
    name, extras, version = match.groups()
    return Pin(name, version, tuple(e.strip() for e in extras.split(",")) if extras else ())


@dataclass(frozen=True)
class Peer:
    """One peer: its program, its pins, and how the bench tells that it is done.

    ``internal_topic`` (the prefix of the peer's repartition topic, ``{app}`` standing for the
    application id) is set for a peer that commits to Kafka under the consumer group named by
    its application id: it is done once that group has committed the input and that topic to
    their ends. A peer without one prints ``DONE`` once it has read its input to the end and
    flushed its output.
    """

    name: str
    title: str
    pins: tuple[str, ...]
    internal_topic: str | None = None
    wants_partitions: bool = False

    @property
    def program(self) -> Path:
        return PROGRAMS / f"{self.name}_seed.py"

    @property
    def venv_name(self) -> str:
        first = parse_pin(self.pins[0])
        return f"{first.name}-{first.version}"

    @property
    def completion(self) -> str:
        if self.internal_topic is None:
            return "its own end of input (prints DONE after its output is flushed)"
        topic = self.internal_topic.replace("{app}", "<group>")
        return f"its consumer group's committed offsets at the end of the input and {topic}*"


PEERS: dict[str, Peer] = {
    peer.name: peer
    for peer in (
        Peer("quixstreams", "Quix Streams", ("quixstreams==3.28.1",), "repartition__{app}--"),
        Peer("bytewax", "Bytewax", ("bytewax[kafka]==0.21.1",)),
        Peer("pathway", "Pathway", ("pathway==0.33.0", "confluent-kafka==2.16.1")),
        Peer(
            "faust",
            "Faust",
            ("faust-streaming==0.15.3",),
            "{app}-by-client",
            wants_partitions=True,
        ),
    )
}


def selected_peers(raw: str) -> tuple[str, ...]:
    """``BENCH_PEERS``: peer names, comma-separated (empty: all); an unknown one ends the run."""
    names = tuple(dict.fromkeys(n.strip().lower() for n in raw.split(",") if n.strip()))
    unknown = [n for n in names if n not in PEERS]
    if unknown:
        raise SystemExit(f"BENCH_PEERS: unknown peers {unknown}; known: {tuple(PEERS)}")
    return names or tuple(PEERS)


def installed_versions(python: Path, names: list[str]) -> dict[str, str | None]:
    """The version of each distribution installed for ``python`` (``None``: not installed)."""
    script = (
        "import importlib.metadata as m, json, sys\n"
        "def v(n):\n"
        "    try:\n"
        "        return m.version(n)\n"
        "    except m.PackageNotFoundError:\n"
        "        return None\n"
        "print(json.dumps({n: v(n) for n in sys.argv[1:]}))\n"
    )
    out = subprocess.run(
        [str(python), "-c", script, *names], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return dict.fromkeys(names)
    versions: dict[str, str | None] = json.loads(out.stdout)
    return versions


def _pinned(python: Path, pins: list[Pin]) -> bool:
    if not python.exists():
        return False
    versions = installed_versions(python, [p.name for p in pins])
    return all(versions.get(p.name) == p.version for p in pins)


def ensure_venv(peer: Peer, root: Path, log_path: Path) -> Path:
    """The interpreter of ``peer``'s virtualenv under ``root``, created and installed if its
    pinned versions are not there yet; pip's output goes to ``log_path``."""
    pins = [parse_pin(spec) for spec in peer.pins]
    venv = root / peer.venv_name
    python = venv / "bin" / "python"
    if _pinned(python, pins):
        return python
    root.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as out:
        steps = {
            "python -m venv": [sys.executable, "-m", "venv", "--clear", str(venv)],
            f"pip install {' '.join(peer.pins)}": [
                str(python), "-m", "pip", "install", "--quiet", *peer.pins
            ],
        }  # fmt: skip
        for step, argv in steps.items():
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
            if code.returncode != 0:
                raise PeerFailure(f"{step} failed (exit {code.returncode}); see {log_path}")
    if not _pinned(python, pins):
        raise PeerFailure(f"{venv}: the pinned versions {list(peer.pins)} are not installed")
    return python


def code_lines(source: str) -> int:
    """Lines of code in ``source``: neither blank, nor only a comment, nor part of a docstring."""
    docstrings: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                docstrings.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    skip = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT}
    code: set[int] = set()
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type not in skip and token.type != tokenize.ENDMARKER:
            code.update(range(token.start[0], token.end[0] + 1))
    return len(code - docstrings)

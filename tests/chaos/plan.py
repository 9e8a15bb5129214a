"""What one seed of the fault harness does, drawn from the seed: settings, input and faults.

Everything random about a run comes from ``random.Random(seed)`` here, so a failing seed replays
with the same topology, settings, input records and fault schedule (timing on a busy machine
still varies, which is why many seeds are run).
"""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

from tests.chaos.sessions import draw_sessions
from tests.chaos.topologies import KINDS, Event, WindowShape
from tests.chaos.windowed import draw_windowed

TIMED = {"windowed": draw_windowed, "sessions": draw_sessions}
"""The kinds whose records carry times, and how their shape and times are drawn."""

EXCHANGES = ["NASDAQ", "NYSE", "LSE", "XETRA", "TSE"]
TICKERS = ["AAPL", "MSFT", "SAP", "BP", "VOD", "IBM"]

# kill9: SIGKILL an instance and restart it (state dir kept, or deleted when ``wipe``);
# pause: SIGSTOP past the session timeout, then SIGCONT (a zombie that wakes up);
# broker: stop the broker for ``seconds`` and start it again on the same data;
# scale_up / scale_down: start one more instance / close one cleanly (SIGTERM);
# restart: close one cleanly and start it again on its state dir.
FAULTS = ("kill9", "kill9_wipe", "pause", "broker", "scale_up", "scale_down", "restart")
GUARANTEES = ("at_least_once", "exactly_once_v2")


@dataclass(frozen=True)
class Fault:
    at_s: float  # seconds into the live phase
    kind: str
    instance: int  # which running instance (an index into the live ones, modulo their number)
    seconds: float = 0.0  # how long the broker stays down / the process stays stopped
    delay_s: float = 0.0  # kill9: how long the process stays dead before its restart


@dataclass(frozen=True)
class Malformed:
    key: bytes | None
    value: bytes
    kind: str


@dataclass
class Plan:
    seed: int
    kind: str
    guarantee: str
    standbys: int
    instances: int
    partitions: int
    commit_interval_ms: int
    cache_max_bytes: int
    rate: int  # live input records per second
    preload: list[Event] = field(repr=False)
    live: list[Event] = field(repr=False)
    malformed_preload: list[Malformed] = field(repr=False)
    malformed_live: list[Malformed] = field(repr=False)
    faults: list[Fault]
    marker: str  # a string in every malformed record that must never reach a log line
    windows: WindowShape | None = None  # the windowed kind's (its positions carry their "at")

    def describe(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "kind": self.kind,
            "guarantee": self.guarantee,
            "standbys": self.standbys,
            "instances": self.instances,
            "partitions": self.partitions,
            "commit_interval_ms": self.commit_interval_ms,
            "cache_max_bytes": self.cache_max_bytes,
            "rate": self.rate,
            "preload": len(self.preload),
            "live": len(self.live),
            "malformed": len(self.malformed_preload) + len(self.malformed_live),
            "faults": [asdict(f) for f in self.faults],
            "windows": None if self.windows is None else asdict(self.windows),
        }


@dataclass(frozen=True)
class Size:
    """Pins for the drawn shape of a run (``None``: drawn from the seed), e.g. the issue's
    kill -9 scenario at its own size: 3 instances, 6 partitions, a 200 ms commit interval,
    200k live events over 30k positions and 4k clients."""

    instances: int | None = None
    partitions: int | None = None
    commit_interval_ms: int | None = None
    rate: int | None = None  # live records per second
    events: int | None = None  # live records in all
    positions: int | None = None
    clients: int | None = None


def draw(
    seed: int,
    *,
    kind: str | None = None,
    guarantee: str | None = None,
    faults: list[str] | None = None,
    standbys: int | None = None,
    size: Size | None = None,
) -> Plan:
    """The plan of ``seed``; keyword arguments pin what would otherwise be drawn."""
    size = size or Size()
    rng = random.Random(seed)
    kind = kind or _draw_kind(seed, rng)
    guarantee = guarantee or rng.choice(GUARANTEES)
    standbys = rng.choice((0, 0, 1)) if standbys is None else standbys
    instances = rng.choice((2, 3))
    partitions = rng.choice((4, 6))
    commit_interval_ms = rng.choice((100, 200, 500, 1000))
    cache_max_bytes = rng.choice((0, 64 * 1024, 10 * 1024 * 1024))
    rate = rng.choice((300, 600, 1000))
    live_seconds = rng.uniform(24.0, 34.0)
    instances = size.instances or instances
    partitions = size.partitions or partitions
    commit_interval_ms = size.commit_interval_ms or commit_interval_ms
    rate = size.rate or rate
    if size.events:
        live_seconds = size.events / rate
    gen = _Generator(rng, KINDS[kind].inputs, KINDS[kind].static_clients, size)
    preload = gen.events(rng.randrange(1500, 3000), preload=True)
    live = gen.events(int(rate * live_seconds), preload=False)
    windows = None
    if kind in TIMED:  # its own generator: the other kinds' plans stay as they were
        windows, preload, live = TIMED[kind](random.Random(seed * 6151 + 3), preload, live)
    marker = f"chaos-secret-{seed:x}"
    malformed_preload = [_malformed(rng, marker) for _ in range(rng.randrange(2, 6))]
    malformed_live = [_malformed(rng, marker) for _ in range(rng.randrange(2, 8))]
    chosen = faults if faults is not None else _draw_faults(rng)
    schedule = []
    # Faults spread over the live phase, never closer than 6 s, the last one with time to spare.
    slots = sorted(rng.sample(range(int(live_seconds * 0.75) // 6), len(chosen)))
    for slot, name in zip(slots, chosen, strict=True):
        schedule.append(
            Fault(
                at_s=2.0 + slot * 6.0 + rng.uniform(0.0, 2.0),
                kind=name,
                instance=rng.randrange(8),
                seconds=rng.uniform(10.0, 20.0) if name == "broker" else 0.0,
                delay_s=rng.uniform(0.0, 3.0) if name.startswith("kill9") else 0.0,
            )
        )
    return Plan(
        seed, kind, guarantee, standbys, instances, partitions, commit_interval_ms,
        cache_max_bytes, rate, preload, live, malformed_preload, malformed_live, schedule, marker,
        windows,
    )  # fmt: skip


def _draw_kind(seed: int, rng: random.Random) -> str:
    """A kind; the six before ``windowed`` are drawn from ``rng`` as before it came, so that a
    seed of theirs replays the same run, and ``windowed`` and ``sessions`` take their share of
    seeds apart: ``windowed`` the same seeds as before ``sessions`` came, and ``sessions``
    (drawn with a salt that leaves every seed named in the docs and tests as it was) about one
    in eight of the rest."""
    kind = rng.choice(sorted(set(KINDS) - set(TIMED)))
    if random.Random(seed * 6151 + 5).random() < 1 / 7:
        return "windowed"
    return "sessions" if random.Random(seed * 6151 + 82).random() < 1 / 7 else kind


def _draw_faults(rng: random.Random) -> list[str]:
    weights = {"kill9": 3, "kill9_wipe": 2, "pause": 2, "broker": 2, "scale_up": 1,
               "scale_down": 1, "restart": 1}  # fmt: skip
    names = sorted(weights)
    return rng.choices(names, weights=[weights[n] for n in names], k=rng.randrange(2, 4))


class _Generator:
    """Positions with updates, moves between clients, same-client updates and closes; notes
    or clients beside them. ``amount`` is a sequence number unique to each position record."""

    def __init__(
        self, rng: random.Random, inputs: tuple[str, ...], static_clients: bool, size: Size
    ) -> None:
        self.rng = rng
        self.inputs = inputs
        self.static_clients = static_clients
        self.ids = rng.randrange(300, 1500)
        self.clients = rng.randrange(40, 200)
        self.ids = size.positions or self.ids
        self.clients = size.clients or self.clients
        self.seq = 0
        self.current: dict[str, dict[str, Any]] = {}

    def events(self, count: int, preload: bool) -> list[Event]:
        rng = self.rng
        out: list[Event] = []
        if preload and "clients" in self.inputs:
            for c in range(self.clients):
                if rng.random() < 0.9:
                    out.append(("clients", f"c{c}", self._client(c)))
        for _ in range(count):
            roll = rng.random()
            if "notes" in self.inputs and roll < 0.3:
                pid = f"p{rng.randrange(self.ids)}"
                note = None if rng.random() < 0.15 else {"note": f"n{rng.randrange(10**6)}"}
                out.append(("notes", pid, note))
            elif "clients" in self.inputs and not self.static_clients and roll < 0.1:
                c = rng.randrange(self.clients)
                out.append(("clients", f"c{c}", None if rng.random() < 0.2 else self._client(c)))
            else:
                out.append(self._position())
        return out

    def _client(self, c: int) -> dict[str, Any]:
        return {"name": f"name{c}-{self.rng.randrange(1000)}", "email": None, "unsubscribed": False}

    def _position(self) -> Event:
        rng = self.rng
        pid = f"p{rng.randrange(self.ids)}"
        if rng.random() < 0.1:
            self.current.pop(pid, None)
            return ("positions", pid, None)
        self.seq += 1
        old = self.current.get(pid)
        same_client = old is not None and rng.random() < 0.4
        pos = {
            "id": pid,
            "client": old["client"] if same_client and old else f"c{rng.randrange(self.clients)}",
            "ticker": rng.choice(TICKERS),
            "exchange": rng.choice(EXCHANGES),
            "amount": self.seq,
        }
        self.current[pid] = pos
        return ("positions", pid, pos)


def _malformed(rng: random.Random, marker: str) -> Malformed:
    """A record the positions serde must reject, with ``marker`` in its value."""
    person = f'{{"name": "Jane {marker}", "email": "jane.{marker}@example.com"}}'
    kinds = {
        "not-json": f"not json {marker}".encode(),
        "array": f'["{marker}", 1, 2]'.encode(),
        "scalar": f'"{marker}"'.encode(),
        "missing-client": (
            f'{{"id": "{marker}", "ticker": "AAPL", "exchange": "NYSE", "amount": 1}}'
        ).encode(),
        "client-object": (
            f'{{"id": "x", "client": {person}, "ticker": "AAPL", "exchange": "NYSE", "amount": 1}}'
        ).encode(),
        "amount-string": (
            f'{{"id": "x", "client": "c1", "ticker": "AAPL", "exchange": "NYSE", '
            f'"amount": "{marker}"}}'
        ).encode(),
        "nan": (
            f'{{"id": "{marker}", "client": "c1", "ticker": "A", "exchange": "NYSE", '
            '"amount": NaN}'
        ).encode(),
        "bad-utf8": b'{"id": "\xff\xfe' + marker.encode() + b'", "client": "c1"}',
        "large": (f'{{"id": "x", "client": "{marker}", "pad": "' + "x" * 200_000 + '"}').encode(),
        "empty": b"",
    }  # fmt: skip
    name = rng.choice(sorted(kinds))
    key: bytes | None
    roll = rng.random()
    if roll < 0.15:
        key = None
    elif roll < 0.6:
        key = f"p{rng.randrange(300)}".encode()  # the key of a (likely) valid position
    else:
        key = f"bad-{rng.randrange(10**6)}".encode()
    return Malformed(key, kinds[name], name)

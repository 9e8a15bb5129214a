"""Malformed position records: every way a producer can get the positions topic wrong.

``malformed_positions(rng, n)`` returns ``n`` records ``(key, value, kind)`` cycling through
:data:`KINDS` (so ``n >= len(KINDS)`` covers every kind at least once), with random content from
``rng``. Every record is rejected by the service's input path: the key serde (UTF-8 text, not
null) or ``us_shareholders.records.POSITION``; none is a tombstone. Keys are unique (``m-...``)
unless the kind is about the key itself, so a malformed record never overwrites a valid one.

Wherever the value can carry text, it carries personal-looking data made of a marker,
``PII-<hex>``: names like ``Ada PII-1f2e3d4c5b`` and emails like ``PII-1f2e3d4c5b@example.com``.
A log line containing :data:`PII_MARKER` echoed a record value; :func:`personal_strings` lists
the exact strings of one record.

Used by the DLQ/logging test and by the chaos harness; keep the signature.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable

PII_MARKER = "PII-"
_PII_RE = re.compile(rb"PII-[0-9a-f]{10}(?:@example\.com)?")

Record = tuple[bytes | None, bytes | None, str]

NEAR_1MB = 950_000
"""Size of the largest values: under librdkafka's default ``message.max.bytes`` (1,000,000),
with room for the dead-letter headers."""


class _Gen:
    def __init__(self, rng: random.Random, index: int) -> None:
        self.rng = rng
        self.index = index
        self.marker = f"{PII_MARKER}{rng.getrandbits(40):010x}"

    @property
    def name(self) -> str:
        first = self.rng.choice(["Ada", "Grace", "Alan", "Edsger", "Barbara", "Ken"])
        return f"{first} {self.marker}"

    @property
    def email(self) -> str:
        return f"{self.marker}@example.com"

    def key(self, kind: str) -> bytes:
        return f"m-{kind}-{self.index}-{self.rng.getrandbits(32):08x}".encode()

    def position(self, **overrides: object) -> dict[str, object]:
        pos: dict[str, object] = {
            "id": f"m{self.index}",
            "client": self.name,
            "ticker": self.rng.choice(["AAPL", "MSFT", "IBM", "TSLA"]),
            "exchange": self.rng.choice(["NASDAQ", "NYSE", "XNAS", "LSE"]),
            "amount": self.rng.randint(1, 10_000),
        }
        pos.update(overrides)
        return pos

    def without(self, field: str) -> dict[str, object]:
        pos = self.position()
        del pos[field]
        return pos


def _dumps(value: object) -> bytes:
    return json.dumps(value).encode()


def _raw(pos: dict[str, object], field: str, literal: str) -> bytes:
    """JSON text of ``pos`` with ``field``'s value replaced by ``literal`` (not valid JSON)."""
    pos = dict(pos)
    pos[field] = "@@LITERAL@@"
    return _dumps(pos).replace(b'"@@LITERAL@@"', literal.encode())


def _nested(g: _Gen, depth: int) -> object:
    junk: object = {"email": g.email, "name": g.name}
    for level in range(depth):
        junk = [junk, {"level": level}] if level % 2 else {"n": junk}
    return junk


Maker = Callable[[_Gen, str], tuple[bytes | None, bytes | None]]

_MAKERS: dict[str, Maker] = {
    # Not JSON at all.
    "not_json": lambda g, k: (g.key(k), f"{g.name} <{g.email}> holds AAPL".encode()),
    "truncated_json": lambda g, k: (g.key(k), _dumps(g.position())[:-7]),
    "empty_value": lambda g, k: (g.key(k), b""),
    "whitespace_value": lambda g, k: (g.key(k), b" \n\t "),
    "bom_prefixed": lambda g, k: (g.key(k), b"\xef\xbb\xbf" + _dumps(g.position())),
    "utf16_json": lambda g, k: (g.key(k), json.dumps(g.position()).encode("utf-16")),
    "nan_amount": lambda g, k: (g.key(k), _raw(g.position(), "amount", "NaN")),
    "infinity_amount": lambda g, k: (g.key(k), _raw(g.position(), "amount", "-Infinity")),
    "huge_exponent": lambda g, k: (g.key(k), _raw(g.position(), "amount", "1e400")),
    "nul_in_string": lambda g, k: (
        g.key(k),
        _dumps(g.position()).replace(g.marker.encode(), g.marker.encode() + b"\x00", 1),
    ),
    "lone_surrogate": lambda g, k: (g.key(k), _raw(g.position(), "ticker", '"\\ud800x"')),
    "deep_nesting": lambda g, k: (g.key(k), b"[" * 5000 + _dumps(g.email) + b"]" * 5000),
    "invalid_utf8_value": lambda g, k: (
        g.key(k),
        _dumps(g.position()).replace(g.marker.encode(), g.marker.encode() + b"\xff\xfe", 1),
    ),
    # JSON, but not an object.
    "json_array": lambda g, k: (g.key(k), _dumps([g.position()])),
    "json_string": lambda g, k: (g.key(k), _dumps(f"{g.name} <{g.email}>")),
    "json_number": lambda g, k: (g.key(k), _dumps(g.rng.randint(-(10**6), 10**6))),
    "json_bool": lambda g, k: (g.key(k), b"true"),
    "json_null": lambda g, k: (g.key(k), b"null"),
    "empty_object": lambda g, k: (g.key(k), b"{}"),
    # An object with missing fields.
    "missing_id": lambda g, k: (g.key(k), _dumps(g.without("id"))),
    "missing_client": lambda g, k: (g.key(k), _dumps(g.without("client"))),
    "missing_ticker": lambda g, k: (g.key(k), _dumps(g.without("ticker"))),
    "missing_exchange": lambda g, k: (g.key(k), _dumps(g.without("exchange"))),
    "missing_amount": lambda g, k: (g.key(k), _dumps(g.without("amount"))),
    # An object with wrong-typed or empty fields.
    "client_object": lambda g, k: (
        g.key(k),
        _dumps(g.position(client={"name": g.name, "email": g.email})),
    ),
    "client_list": lambda g, k: (g.key(k), _dumps(g.position(client=[g.name, g.email]))),
    "client_empty": lambda g, k: (g.key(k), _dumps(g.position(client=""))),
    "client_blank": lambda g, k: (g.key(k), _dumps(g.position(client="  \t "))),
    "id_number": lambda g, k: (g.key(k), _dumps(g.position(id=g.rng.randint(1, 10**6)))),
    "id_huge_number": lambda g, k: (g.key(k), _raw(g.position(), "id", "1" + "0" * 30)),
    "ticker_null": lambda g, k: (g.key(k), _dumps(g.position(ticker=None))),
    "exchange_object": lambda g, k: (
        g.key(k),
        _dumps(g.position(exchange={"name": "NASDAQ", "contact": g.email})),
    ),
    "amount_string": lambda g, k: (g.key(k), _dumps(g.position(amount=f"{g.email} 100"))),
    "amount_bool": lambda g, k: (g.key(k), _dumps(g.position(amount=True))),
    "amount_nested_junk": lambda g, k: (g.key(k), _dumps(g.position(amount=_nested(g, 40)))),
    "near_1mb_field": lambda g, k: (
        g.key(k),
        _dumps(g.position(amount=g.email + " " + "x" * NEAR_1MB)),
    ),
    "near_1mb_not_json": lambda g, k: (
        g.key(k),
        (g.email.encode() + b" ") * (NEAR_1MB // (len(g.email) + 1)),
    ),
    # The key itself is bad (the value is a valid position: only the key is wrong).
    "null_key": lambda g, k: (None, _dumps(g.position())),
    "invalid_utf8_key": lambda g, k: (
        b"\xff\xfe" + g.marker.encode() + b"\xc3",
        _dumps(g.position()),
    ),
    "null_key_and_value_junk": lambda g, k: (None, f"{g.email}".encode()),
}

KINDS: tuple[str, ...] = tuple(_MAKERS)
"""Every kind, in the order :func:`malformed_positions` cycles through them."""


def malformed_positions(rng: random.Random, n: int) -> list[tuple[bytes | None, bytes | None, str]]:
    """``n`` malformed position records ``(key, value, kind)``; kinds cycle through
    :data:`KINDS` in order, contents come from ``rng`` (same seed, same records)."""
    records: list[Record] = []
    for i in range(n):
        kind = KINDS[i % len(KINDS)]
        key, value = _MAKERS[kind](_Gen(rng, i), kind)
        records.append((key, value, kind))
    return records


def personal_strings(record: Record) -> set[str]:
    """The names' markers and emails a record carries (what must never reach a log line)."""
    found: set[str] = set()
    for part in record[:2]:
        if part is not None:
            found.update(m.decode() for m in _PII_RE.findall(part))
    return found

"""Query results as values, key parsing per serde, JSON rendering and cursors."""

from __future__ import annotations

import dataclasses
import enum
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as hs

from streamtable.query import FailureReason, QueryResult, parse_key, render
from streamtable.query._codec import cursor_key, decode_cursor, dumps, encode_cursor, prefix_bytes
from streamtable.query._pages import page_of
from streamtable.serde import BYTES, DEFAULT, DOUBLE, INT, JSON, LONG, STRING

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("reason", "status", "retriable"),
    [
        (FailureReason.NOT_READY, 503, True),
        (FailureReason.NOT_OWNER, 503, True),
        (FailureReason.NOT_FOUND, 404, False),
        (FailureReason.UNKNOWN_STORE, 404, False),
        (FailureReason.BAD_KEY, 400, False),
        (FailureReason.BAD_REQUEST, 400, False),
        (FailureReason.OWNER_UNREACHABLE, 504, False),
    ],
)
def test_each_failure_reason_has_a_status(
    reason: FailureReason, status: int, retriable: bool
) -> None:
    result: QueryResult[Any] = QueryResult.failure(reason, "why")
    assert (result.is_ok, result.status, reason.retriable) == (False, status, retriable)
    with pytest.raises(ValueError, match="why"):
        result.unwrap()


def test_ok_result_carries_its_value() -> None:
    result = QueryResult.ok({"a": 1})
    assert (result.is_ok, result.status, result.unwrap()) == (True, 200, {"a": 1})


@pytest.mark.parametrize(
    ("serde", "text", "key"),
    [
        (STRING, "c1", "c1"),
        (STRING, '"c1"', '"c1"'),  # STRING takes the text as is
        (DEFAULT, '"c1"', "c1"),
        (DEFAULT, "7", 7),
        (DEFAULT, '{"$t": [1, "a"]}', (1, "a")),
        (JSON, '{"a": [1, 2]}', {"a": [1, 2]}),
        (INT, "-42", -42),
        (LONG, str(2**40), 2**40),
        (DOUBLE, "1.5", 1.5),
        (BYTES, "raw", b"raw"),
    ],
)
def test_path_key_is_parsed_with_the_store_key_serde(serde: Any, text: str, key: Any) -> None:
    assert parse_key(text, serde) == QueryResult.ok(key)


@pytest.mark.parametrize(
    ("serde", "text"),
    [
        (DEFAULT, "c1"),  # not JSON
        (JSON, "{nope"),
        (DEFAULT, "null"),
        (INT, "1.5"),
        (INT, "abc"),
        (INT, str(2**31)),  # does not fit 32 bits
        (LONG, str(2**63)),
        (DOUBLE, "x"),
    ],
)
def test_undecodable_key_is_bad_key(serde: Any, text: str) -> None:
    result = parse_key(text, serde)
    assert result.reason is FailureReason.BAD_KEY
    assert result.status == 400


def test_unknown_serde_cannot_parse_keys() -> None:
    class Custom:
        def serialize(self, value: Any) -> bytes:
            return b""

        def deserialize(self, data: bytes) -> Any:
            return data

    assert parse_key("x", Custom()).reason is FailureReason.BAD_KEY


def test_render_turns_python_collections_into_sorted_json() -> None:
    value = {
        "set": frozenset({"p3", "p1", "p2"}),
        "tuple": (1, "a"),
        "nested": [{2, 1}],
        "bytes": b"\x00\xff",
        1: "int key",
        (1, 2): "tuple key",
    }
    rendered = render(value)
    assert rendered == {
        "set": ["p1", "p2", "p3"],
        "tuple": [1, "a"],
        "nested": [[1, 2]],
        "bytes": "AP8=",
        "1": "int key",
        "[1,2]": "tuple key",
    }
    assert render(rendered) == rendered  # relaying a rendered answer keeps it


def test_render_sorts_sets_of_unorderable_items_deterministically() -> None:
    assert render({1, "a"}) == render({"a", 1})


def test_cursor_round_trips_key_bytes_and_rejects_garbage() -> None:
    for raw in (b"", b'"c1"', bytes(range(256))):
        assert decode_cursor(encode_cursor(raw)) == QueryResult.ok(raw)
    for bad in ("!!", "AAAA", "zz"):
        assert decode_cursor(bad).reason is FailureReason.BAD_REQUEST


def test_prefix_of_string_keys_matches_serialized_keys() -> None:
    assert prefix_bytes("c1", STRING).unwrap() == b"c1"
    assert DEFAULT.serialize("c12").startswith(prefix_bytes("c1", DEFAULT).unwrap())
    assert not DEFAULT.serialize("c2").startswith(prefix_bytes("c1", DEFAULT).unwrap())
    assert prefix_bytes("1", INT).reason is FailureReason.BAD_REQUEST


class Colour(enum.StrEnum):
    RED = "red"


class Size(enum.IntEnum):
    BIG = 2


@dataclasses.dataclass
class Point:
    x: int


ATOMS = (
    hs.none()
    | hs.booleans()
    | hs.integers(-(2**63), 2**63 - 1)
    | hs.floats(allow_nan=False, allow_infinity=False)
    | hs.text(max_size=5)
    | hs.binary(max_size=5)
    | hs.sampled_from([Colour.RED, Size.BIG, Point(1), datetime(2026, 11, 24, tzinfo=UTC)])
)
HASHABLE = hs.recursive(
    hs.none() | hs.booleans() | hs.integers(-5, 5) | hs.text(max_size=3),
    lambda inner: hs.tuples(inner, inner) | hs.frozensets(inner, max_size=3),
    max_leaves=5,
)
VALUES = hs.recursive(
    ATOMS,
    lambda inner: (
        hs.lists(inner, max_size=3)
        | hs.lists(inner, max_size=3).map(tuple)
        | hs.frozensets(HASHABLE, max_size=3)
        | hs.sets(HASHABLE, max_size=3)
        | hs.dictionaries(hs.text(max_size=3), inner, max_size=3)
        | hs.dictionaries(HASHABLE, inner, max_size=3)
    ),
    max_leaves=12,
)


@given(VALUES)
def test_fast_dumps_equals_rendering_then_dumping(value: Any) -> None:
    assert dumps(value) == orjson.dumps(render(value))


def test_cursor_key_is_the_key_bytes_and_refuses_what_is_no_cursor() -> None:
    assert cursor_key(encode_cursor(b"\x00abc")) == b"\x00abc"
    with pytest.raises(ValueError, match="not a cursor"):
        cursor_key("bm90IGEgY3Vyc29y")


def test_a_peer_page_in_either_format_becomes_the_same_run() -> None:
    columns = {"keys": ["a", "b"], "values": ['{"v":1}', "2"], "partitions": [1], "has_more": True}
    items = {
        "items": [
            {"key": "a", "value": {"v": 1}, "cursor": encode_cursor(b"a")},
            {"key": "b", "value": 2, "cursor": encode_cursor(b"b")},
        ],
        "partitions": [1],
        "has_more": True,
    }
    for body in (columns, items):
        page = page_of(body, text_keys=True)
        assert [(kb, key) for kb, key, _ in page.items] == [(b"a", "a"), (b"b", "b")]
        assert orjson.dumps([v for _, _, v in page.items]) == b'[{"v":1},2]'
        assert (page.partitions, page.has_more) == ((1,), True)
    with pytest.raises(KeyError):
        page_of({"keys": ["a"], "values": ["1"], "partitions": [0], "has_more": False}, False)
    with pytest.raises(ValueError, match="differ in length"):
        page_of({"keys": ["a"], "values": [], "partitions": [0], "has_more": False}, True)

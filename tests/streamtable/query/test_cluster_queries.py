"""ClusterQueries, the public helper the query server is built on: an application's own routes
read keys and page through a whole store with it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from streamtable.query import (
    ClusterQueries,
    FailureReason,
    ScanRequest,
    parse_scan_params,
    render,
)
from streamtable.serde import DEFAULT
from tests.streamtable.query.fakes import STORE, seeded

pytestmark = pytest.mark.unit

HOLDERS = {f"c{i}": frozenset({f"p{i}"}) for i in range(25)}


@pytest.fixture
def queries() -> ClusterQueries:
    cluster = seeded(3, HOLDERS)
    return ClusterQueries(cluster.apps[0], transport=cluster.network, forward_timeout_s=0.5)


def test_pages_followed_by_their_cursor_give_every_key_once_in_key_order(
    queries: ClusterQueries,
) -> None:
    async def scan_all() -> list[tuple[Any, Any]]:
        rows: list[tuple[Any, Any]] = []
        cursor: str | None = None
        while True:
            params = {"limit": "4", **({"cursor": cursor} if cursor else {})}
            request = parse_scan_params(params, DEFAULT).unwrap()
            page = (await queries.scan(STORE, request)).unwrap()
            assert len(page.items) <= 4
            rows += [(key, render(value)) for _, key, value in page.items]
            cursor = page.next_cursor
            if cursor is None:
                await queries.aclose()
                return rows

    rows = asyncio.run(scan_all())
    assert rows == [(k, sorted(HOLDERS[k])) for k in sorted(HOLDERS, key=DEFAULT.serialize)]


def test_a_key_is_read_from_its_owner(queries: ClusterQueries) -> None:
    async def read(text: str) -> Any:
        try:
            return await queries.get(STORE, text)
        finally:
            await queries.aclose()

    assert asyncio.run(read('"c3"')).unwrap() == ("c3", ["p3"])
    assert asyncio.run(read('"nobody"')).reason is FailureReason.NOT_FOUND
    assert asyncio.run(read("c3")).reason is FailureReason.BAD_KEY


def test_a_bound_without_its_text_cannot_be_sent_to_the_other_instances(
    queries: ClusterQueries,
) -> None:
    request = ScanRequest(lo="c1", lo_bytes=DEFAULT.serialize("c1"))
    found = asyncio.run(queries.scan(STORE, request))
    assert found.reason is FailureReason.BAD_REQUEST
    assert "parse_scan_params" in found.message
    bounded = parse_scan_params({"from": '"c1"'}, DEFAULT).unwrap()
    assert bounded.bounds_text == (("from", '"c1"'),)


def test_render_decodes_json_passed_on_as_stored() -> None:
    assert render(orjson.Fragment(b'{"a": [1, 2]}')) == {"a": [1, 2]}

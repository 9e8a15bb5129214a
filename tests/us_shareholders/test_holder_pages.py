"""Following ``next_cursor`` to the end of ``GET /holders``, as the CLI and the test harnesses
read the whole list: pages in order, the cursor passed back, failures raised."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from us_shareholders.holder_pages import HolderListingError, all_holders

pytestmark = pytest.mark.unit


def holder(client: str) -> dict[str, Any]:
    return {"client": client, "positions": []}


class Pages:
    """Canned pages keyed by the cursor asked for (None: the first page)."""

    def __init__(self, pages: dict[str | None, tuple[list[str], str | None]]) -> None:
        self.pages = pages
        self.asked: list[str] = []

    def __call__(self, path: str) -> httpx.Response:
        self.asked.append(path)
        query = parse_qs(urlsplit(path).query)
        clients, following = self.pages[query.get("cursor", [None])[0]]
        body = {"holders": [holder(c) for c in clients], "next_cursor": following}
        return httpx.Response(200, json=body)


def test_every_page_is_read_with_the_cursor_of_the_one_before() -> None:
    pages = Pages({None: (["a", "b"], "k1"), "k1": (["c", "d"], "k2"), "k2": (["e"], None)})
    assert all_holders(pages, limit=2, local=True) == [holder(c) for c in "abcde"]
    assert pages.asked == [
        "/holders?limit=2&local=true",
        "/holders?limit=2&local=true&cursor=k1",
        "/holders?limit=2&local=true&cursor=k2",
    ]


def test_a_page_that_is_not_200_is_raised_with_its_reply() -> None:
    def get(path: str) -> httpx.Response | None:
        if "cursor" in path:
            return httpx.Response(503, json={"error": "not_ready", "message": "rebalancing"})
        return httpx.Response(200, json={"holders": [holder("a")], "next_cursor": "k"})

    with pytest.raises(HolderListingError, match="503") as caught:
        all_holders(get)
    assert caught.value.reply is not None
    assert caught.value.reply.status_code == 503
    with pytest.raises(HolderListingError, match="no answer"):
        all_holders(lambda path: None)


def test_pages_out_of_order_or_a_cursor_that_stays_put_are_errors() -> None:
    repeated = Pages({None: (["a", "b"], "k1"), "k1": (["b", "c"], None)})
    with pytest.raises(HolderListingError, match="'b' after 'b'"):
        all_holders(repeated)
    stuck = Pages({None: (["a"], "k1"), "k1": (["b"], "k1")})
    with pytest.raises(HolderListingError, match="does not move on"):
        all_holders(stuck)

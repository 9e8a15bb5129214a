"""Reading every holder from an instance: ``GET /holders`` answers a page at a time, so follow
``next_cursor`` from the first page to the last (the CLI, the demo's checks and the test
harnesses all read the whole list this way).

Example::

    holders = all_holders(lambda path: httpx.get("http://127.0.0.1:8080" + path))
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from streamtable.errors import StreamTableError

Get = Callable[[str], "httpx.Response | None"]
"""``get(path)``: an instance's reply to ``GET path``, or None when it did not answer."""


class HolderListingError(StreamTableError):
    """A page was not answered with 200 (``reply``: that answer, None when there was none), or
    the pages were not one sorted list (a server bug). Retrying may help for 503/504."""

    def __init__(self, message: str, reply: httpx.Response | None = None) -> None:
        super().__init__(message)
        self.reply = reply


def all_holders(
    get: Get, *, limit: int | None = None, local: bool = False, max_pages: int = 1_000_000
) -> list[dict[str, Any]]:
    """Every holder (``{"client", "positions"}``), sorted by client, read page by page with
    ``get``; ``limit`` holders a page (the server's default when None); ``local``: the
    instance's own partitions only. Raises :class:`HolderListingError`."""
    holders: list[dict[str, Any]] = []
    cursor: str | None = None
    for _ in range(max_pages):
        params: dict[str, str] = {}
        if limit is not None:
            params["limit"] = str(limit)
        if local:
            params["local"] = "true"
        if cursor is not None:
            params["cursor"] = cursor
        path = "/holders" + (f"?{urlencode(params)}" if params else "")
        reply = get(path)
        if reply is None or reply.status_code != 200:
            status = "no answer" if reply is None else f"{reply.status_code} {reply.text[:200]}"
            raise HolderListingError(f"GET {path}: {status}", reply)
        page = reply.json()
        last = holders[-1]["client"] if holders else None
        for holder in page["holders"]:
            if last is not None and holder["client"] <= last:
                raise HolderListingError(f"GET {path}: {holder['client']!r} after {last!r}")
            last = holder["client"]
        holders += page["holders"]
        following = page["next_cursor"]
        if following is None:
            return holders
        if following == cursor or not page["holders"]:
            raise HolderListingError(f"GET {path}: the cursor does not move on", reply)
        cursor = following
    raise HolderListingError(f"more than {max_pages} pages")

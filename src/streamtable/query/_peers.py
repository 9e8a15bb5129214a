"""Calls from one instance's query server to another's: one GET, marked with
:data:`FORWARDED_HEADER` (its receiver answers locally or refuses, never forwards again), bounded
by a timeout, its answer a :class:`QueryResult` (the peer's failure passed on as it reported it;
no answer, or one that is not the server's JSON, ``owner_unreachable``)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import httpx
import orjson

from streamtable.query._result import FailureReason, QueryResult
from streamtable.runtime._metadata import HostInfo

FORWARDED_HEADER = "x-streamtable-forwarded"
"""Set on requests one instance sends another; such a request is answered locally or refused."""

Body = dict[str, Any]


class PeerClient:
    """GETs to other instances over one ``httpx.AsyncClient`` per event loop; ``transport``
    replaces the network (a test seam). Call :meth:`aclose` when done."""

    def __init__(self, timeout_s: float, transport: httpx.AsyncBaseTransport | None) -> None:
        self.timeout_s = timeout_s
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            self._client = httpx.AsyncClient(
                transport=self._transport, timeout=self.timeout_s, follow_redirects=False
            )
            self._client_loop = loop
        return self._client

    async def aclose(self) -> None:
        """Close the connections to other instances."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(self, host: HostInfo, path: str, params: Mapping[str, str]) -> QueryResult[Body]:
        """The JSON object ``host`` answers 200 with at ``path``, or the failure it reported."""
        url = f"http://{host}{path}"
        try:
            response = await self._http().get(
                url, params=dict(params), headers={FORWARDED_HEADER: "1"}
            )
            body: Any = orjson.loads(response.content)
        except httpx.TimeoutException:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} did not answer within {self.timeout_s:g}s",
            )
        except httpx.HTTPError as exc:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE, f"instance {host} is unreachable: {exc!r}"
            )
        except orjson.JSONDecodeError:
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} answered {response.status_code} without JSON",
            )
        if response.status_code == 200 and isinstance(body, dict):
            return QueryResult.ok(body)
        try:
            reason = FailureReason(body["error"])
            message = str(body.get("message", ""))
        except (TypeError, KeyError, ValueError):
            return QueryResult.failure(
                FailureReason.OWNER_UNREACHABLE,
                f"instance {host} answered {response.status_code}: {response.text[:200]}",
            )
        return QueryResult.failure(reason, f"{message} (from {host})")

"""A broker-free cluster of service APIs: the library's fake instances over the service's
topology, each serving ``create_api`` (with its ``/query`` mount), wired by the fake network."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp

import streamtable as st
from tests.streamtable.query.fakes import Cluster, FakeApp, Network
from us_shareholders.api import create_api
from us_shareholders.digest import HOLDERS_STORE, DigestControl
from us_shareholders.schedule import WeekId, parse_schedule
from us_shareholders.topology import TopologySettings, build_topology
from us_shareholders.venues import VenueMatcher

SCHEDULE = parse_schedule("MON 07:00 America/New_York")
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


def service_topology() -> st.Topology:
    settings = TopologySettings(
        positions_topic="share-holders",
        clients_topic="clients",
        instruments_topic=None,
        digests_topic="digests",
        requests_topic="digest-requests",
        venues=VenueMatcher(),
        schedule=SCHEDULE,
    )
    return build_topology(settings, DigestControl())


TOPOLOGY = service_topology()


class ServiceCluster(Cluster):
    """``size`` instances serving the service's API; digest requests are recorded in
    ``requested`` (``fail_requests``: the broker refuses them)."""

    def __init__(self, size: int) -> None:
        self.requested: list[tuple[WeekId, datetime]] = []
        self.fail_requests = False
        self.delivering = True
        self.registry = CollectorRegistry()
        super().__init__(size, TOPOLOGY, self._serve)

    def _serve(self, app: FakeApp, network: Network) -> ASGIApp:
        return create_api(
            app,
            DigestControl(),
            SCHEDULE,
            self.registry,
            self._request,
            clock=lambda: NOW,
            delivery_alive=lambda: self.delivering,
            transport=network,
        )

    def _request(self, week: WeekId, now: datetime) -> None:
        if self.fail_requests:
            raise RuntimeError("broker down")
        self.requested.append((week, now))

    def hold(self, client: str, positions: dict[str, dict[str, Any]]) -> None:
        self.put(HOLDERS_STORE, client, positions)

"""The windowed cluster most query tests read (a module may define its own ``cluster``)."""

from __future__ import annotations

import pytest

from tests.streamtable.query.fakes import Cluster, InstanceClient, windowed_cluster


@pytest.fixture
def cluster() -> Cluster:
    """Three instances holding :func:`windowed_cluster`'s windows, sessions and totals."""
    return windowed_cluster(3)


@pytest.fixture
def client(cluster: Cluster) -> InstanceClient:
    """A client of the first instance (``10.0.0.1:8000``)."""
    return InstanceClient(cluster, "10.0.0.1:8000")

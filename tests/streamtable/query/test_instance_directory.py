"""Routing metadata from the instances topic: who owns a key's partition, expiry, conflicts."""

from __future__ import annotations

import pytest

from streamtable.errors import StoreNotFound, StoreNotReady
from streamtable.runtime._metadata import HostInfo, InstanceRecord
from streamtable.serde import DEFAULT
from streamtable.topology import partition_for
from tests.streamtable.query.fakes import PARTITIONS, STORE, Cluster, FakeApp

pytestmark = pytest.mark.unit


def record(
    instance: str,
    server: str | None,
    partitions: list[int],
    *,
    generation: int = 1,
    assigned_ms: int = 1_000_000_000,
) -> bytes:
    return InstanceRecord(
        instance_id=instance,
        server=server,
        active={0: tuple(partitions), 1: tuple(partitions)},
        generation=generation,
        assigned_ms=assigned_ms,
        timestamp_ms=1_000_000_000,
        heartbeat_ms=5000,
        state="RUNNING",
    ).encode()


def key_in_partition(p: int) -> str:
    return next(k for k in (f"c{i}" for i in range(10_000)) if partition(k) == p)


def partition(key: str) -> int:
    return partition_for(DEFAULT.serialize(key), PARTITIONS)


def test_key_partition_uses_the_store_key_serde_and_the_producer_partitioner() -> None:
    cluster = Cluster(3)
    for key in ("c1", "c2", "someone"):
        where = cluster.apps[0].metadata_for_key(STORE, key)
        assert where.partition == partition(key)
        owner = cluster.owner_of(STORE, key)
        assert where.active_instance == owner.name
        assert where.is_local == (owner is cluster.apps[0])
        assert where.active_host == HostInfo.parse(f"10.0.0.{int(owner.name[1:]) + 1}:8000")
        assert where.standby_hosts == ()


def test_all_metadata_lists_every_live_instance_with_its_partitions_per_store() -> None:
    cluster = Cluster(3)
    found = cluster.apps[1].all_metadata()
    assert [m.instance_id for m in found] == ["i0", "i1", "i2"]
    assert [m.is_local for m in found] == [False, True, False]
    assert found[2].active[STORE] == (2, 5)
    assert found[2].active["share-holder-store"] == (2, 5)
    assert found[2].standby == {"share-holder-store": (), STORE: ()}  # no standbys placed
    assert found[0].partition_counts[STORE] == PARTITIONS
    assert found[0].store_names == ["share-holder-store", STORE]


def test_expired_peer_is_ignored() -> None:
    cluster = Cluster(2)
    key = key_in_partition(1)  # owned by i1
    assert cluster.apps[0].metadata_for_key(STORE, key).active_instance == "i1"
    cluster.clock[0] += 15.001  # 3 heartbeats without news
    where = cluster.apps[0].metadata_for_key(STORE, key)
    assert (where.active_instance, where.active_host, where.is_local) == (None, None, False)
    assert [m.instance_id for m in cluster.apps[0].all_metadata()] == ["i0"]


def test_tombstone_removes_the_instance_at_once() -> None:
    cluster = Cluster(2)
    cluster.apps[0].directory.apply(b"i1", None)
    assert cluster.apps[0].metadata_for_key(STORE, key_in_partition(1)).active_instance is None


def test_newest_assignment_wins_a_conflicting_claim() -> None:
    app = FakeApp("me", "10.0.0.9:8000", [1_000_000.0])
    app.own([])
    app.directory.apply(b"old", record("old", "10.0.0.1:8000", [3], assigned_ms=999_990_000))
    app.directory.apply(b"new", record("new", "10.0.0.2:8000", [3], assigned_ms=999_995_000))
    assert app.metadata_for_key(STORE, key_in_partition(3)).active_instance == "new"


def test_local_ownership_beats_peer_claims() -> None:
    app = FakeApp("me", "10.0.0.9:8000", [1_000_000.0])
    app.own([3])
    app.directory.apply(b"peer", record("peer", "10.0.0.1:8000", [3]))
    assert app.metadata_for_key(STORE, key_in_partition(3)).is_local


def test_a_predecessor_on_this_instances_address_is_ignored() -> None:
    app = FakeApp("me", "10.0.0.9:8000", [1_000_000.0])
    app.own([])
    app.directory.apply(b"ghost", record("ghost", "10.0.0.9:8000", [3]))
    assert app.metadata_for_key(STORE, key_in_partition(3)).active_instance is None


def test_peer_without_application_server_owns_but_cannot_be_reached() -> None:
    app = FakeApp("me", "10.0.0.9:8000", [1_000_000.0])
    app.own([])
    app.directory.apply(b"quiet", record("quiet", None, [3]))
    where = app.metadata_for_key(STORE, key_in_partition(3))
    assert (where.active_instance, where.active_host) == ("quiet", None)


def test_malformed_records_are_ignored() -> None:
    app = FakeApp("me", "10.0.0.9:8000", [1_000_000.0])
    app.directory.apply(b"x", b"not json")
    app.directory.apply(b"y", b'{"v": 2}')
    app.directory.apply(None, b"{}")
    assert [m.instance_id for m in app.all_metadata()] == ["me"]


def test_generation_grows_only_when_tasks_change() -> None:
    app = FakeApp("me", None, [1_000_000.0])
    app.own([1, 2])
    first = app.local_metadata().generation
    app.own([1, 2])
    assert app.local_metadata().generation == first
    app.own([1])
    assert app.local_metadata().generation == first + 1


def test_record_round_trips_through_its_wire_format() -> None:
    raw = record("a", "h:1", [0, 4], generation=7)
    decoded = InstanceRecord.decode(raw)
    assert decoded.encode() == raw
    assert (decoded.generation, dict(decoded.active)) == (7, {0: (0, 4), 1: (0, 4)})


def test_unknown_store_and_unstarted_directory_raise() -> None:
    app = FakeApp("me", None, [1_000_000.0])
    with pytest.raises(StoreNotFound):
        app.metadata_for_key("nope", "k")
    app.directory._counts = None  # as before start()
    with pytest.raises(StoreNotReady):
        app.metadata_for_key(STORE, "k")

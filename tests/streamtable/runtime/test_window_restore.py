"""A window store restores from its changelog through the changelog reader (the fakes of
``test_changelog_reader``): every live window comes back, windows the store had expired do
not, whatever the batches, on either engine; a RocksDB store reopened keeps them expired."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

import streamtable as st
from streamtable.runtime._changelog import ChangelogPartition
from streamtable.serde import BYTES, JSON, STRING
from streamtable.state import ReadOnlyWindowStore, SerdeStore, open_engine
from streamtable.topology import StoreSpec, Topology, build_store
from tests.streamtable.runtime.test_changelog_reader import FakeConsumer, Msg, reader

pytestmark = pytest.mark.unit

TP = ("test-driver-counts-changelog", 0)
Record = tuple[bytes, bytes | None, int]


class ChangelogMsg(Msg):
    def __init__(self, offset: int, key: bytes, value: bytes | None, timestamp: int) -> None:
        super().__init__(offset, key, value, tp=TP)
        self._timestamp = timestamp

    def timestamp(self) -> tuple[int, int]:
        return 1, self._timestamp


def counting(retention: timedelta) -> Topology:
    b = st.StreamsBuilder()
    windows = st.TimeWindows.of_size_with_no_grace(timedelta(minutes=1))
    b.stream("in", key_serde=STRING, value_serde=JSON).group_by_key().windowed_by(windows).count(
        store="counts", retention=retention
    )
    return b.build()


def processed(topology: Topology, records: list[tuple[str, int]]) -> tuple[Any, list[Record]]:
    """The driver's store contents after ``records``, and its changelog."""
    with st.TopologyTestDriver(topology, start_time=0) as d:
        source = d.input_topic("in")
        for key, ts in records:
            source.pipe(key, {}, ts)
        contents = list(d.window_store("counts").all())
        changelog = d.output_topic(TP[0], key_serde=BYTES, value_serde=BYTES).read_records()
    return contents, [(k, v, ts) for k, v, ts, _ in changelog]


def restored(spec: StoreSpec, engine: Any, changelog: list[Record], batch: int) -> SerdeStore:
    store = build_store(spec, engine, "test-driver", 0, None, None)[0]
    msgs: list[Msg] = [ChangelogMsg(i, k, v, ts) for i, (k, v, ts) in enumerate(changelog)]
    batches = [msgs[i : i + batch] for i in range(0, len(msgs), batch)]
    r = reader(FakeConsumer(*batches))
    r.add([ChangelogPartition(TP, store, 0, end=len(msgs))])
    while r.read(1000, 0)[1] != [TP]:
        pass
    return store


RECORDS = [("a", 1_000), ("b", 30_000), ("a", 61_000), ("c", 190_000), ("a", 200_000)]


@pytest.mark.parametrize("persistent", [False, True])
@pytest.mark.parametrize("batch", [1, 2, 100])
@pytest.mark.parametrize(
    ("minutes", "live"),
    [
        (2, [180_000]),  # segments of 1 min: window 0's deleted, window 60 s's hidden
        (3, [60_000, 180_000]),  # segments of 1.5 min: window 0 hidden in a live segment
    ],
)
def test_live_windows_come_back_and_expired_ones_do_not(
    minutes: int, live: list[int], persistent: bool, batch: int, tmp_path: Path
) -> None:
    topology = counting(retention=timedelta(minutes=minutes))
    contents, changelog = processed(topology, RECORDS)
    assert sorted({key.window.start_ms for key, _ in contents}) == live
    assert len(changelog) == len(RECORDS)  # the expired windows' records are in the log
    spec = topology.stores["counts"]
    store = restored(spec, open_engine(persistent, tmp_path / "counts"), changelog, batch)
    assert list(ReadOnlyWindowStore.over(store).all()) == contents
    store.close()
    if persistent:  # reopened from disk: still expired, still live
        engine = open_engine(True, tmp_path / "counts")
        again = build_store(spec, engine, "test-driver", 0, None, None)[0]
        assert list(ReadOnlyWindowStore.over(again).all()) == contents
        again.close()


def test_a_restored_store_goes_on_counting_where_the_changelog_ended() -> None:
    topology = counting(retention=timedelta(hours=1))
    contents, changelog = processed(topology, RECORDS)
    store = restored(topology.stores["counts"], open_engine(False), changelog, 3)
    view = ReadOnlyWindowStore.over(store)
    assert list(view.all()) == contents
    assert list(view.fetch("a", 0, 300_000)) == [(0, 1), (60_000, 1), (180_000, 1)]
    assert cast(Any, store.engine).stream_time == 180_000

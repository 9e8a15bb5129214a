"""TimeWindows as Kafka Streams' ``TimeWindows``: the windows of a timestamp, and arguments
refused with an error that names them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

import streamtable as st

pytestmark = pytest.mark.unit

MINUTE = timedelta(minutes=1)


def starts(windows: st.TimeWindows, timestamp: int) -> list[int]:
    return [w.start_ms for w in windows.windows_for(timestamp)]


def test_tumbling_windows_hold_one_window_each() -> None:
    windows = st.TimeWindows.of_size_with_no_grace(MINUTE)
    assert (windows.size_ms, windows.advance_ms, windows.grace_ms) == (60_000, 60_000, 0)
    assert windows.windows_for(0) == [st.Window(0, 60_000)]
    assert starts(windows, 59_999) == [0]
    assert starts(windows, 60_000) == [60_000]


def test_hopping_windows_hold_every_window_that_contains_the_timestamp() -> None:
    windows = st.TimeWindows.of_size_and_grace(5 * MINUTE, timedelta(seconds=30)).advance_by(MINUTE)
    assert windows.grace_ms == 30_000
    assert starts(windows, 150_000) == [0, 60_000, 120_000]  # no window starts before 0
    assert starts(windows, 400_000) == [120_000, 180_000, 240_000, 300_000, 360_000]
    assert starts(windows, 360_000) == [120_000, 180_000, 240_000, 300_000, 360_000]
    assert starts(windows, 359_999) == [60_000, 120_000, 180_000, 240_000, 300_000]


def test_windows_are_values() -> None:
    a = st.Windowed("k", st.Window(0, 10))
    assert a == st.Windowed("k", st.Window(0, 10))
    assert len({a, st.Windowed("k", st.Window(0, 10)), st.Windowed("k", st.Window(10, 20))}) == 2
    assert st.TimeWindows.of_size_with_no_grace(MINUTE).default_retention_ms == 60_000


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: st.TimeWindows.of_size_with_no_grace(-MINUTE), ValueError, r"size: got -60000"),
        (lambda: st.TimeWindows.of_size_with_no_grace(timedelta(0)), ValueError, r"size: got 0"),
        (
            lambda: st.TimeWindows.of_size_and_grace(MINUTE, timedelta(seconds=-1)),
            ValueError,
            r"grace: got -1000",
        ),
        (
            lambda: st.TimeWindows.of_size_with_no_grace(MINUTE).advance_by(timedelta(0)),
            ValueError,
            r"advance: got 0 ms",
        ),
        (
            lambda: st.TimeWindows.of_size_with_no_grace(MINUTE).advance_by(2 * MINUTE),
            ValueError,
            r"<= the window size 60000 ms \(advance: got 120000 ms\)",
        ),
        (lambda: st.TimeWindows.of_size_with_no_grace(60_000), TypeError, r"size must be a"),  # type: ignore[arg-type]
        (
            lambda: st.TimeWindows.of_size_and_grace(MINUTE, 5),  # type: ignore[arg-type]
            TypeError,
            r"grace must be a datetime.timedelta",
        ),
        (lambda: st.Window(-1, 10), ValueError, r"start_ms must not be negative"),
        (lambda: st.Window(10, 10), ValueError, r"end_ms must be after its start_ms"),
    ],
)
def test_bad_arguments_are_refused_by_name(make: Any, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        make()

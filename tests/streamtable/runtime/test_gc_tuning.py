"""``python_gc``: the collector is tuned while a tuned app runs, and restored by the last one."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from streamtable import StreamsConfig
from streamtable.errors import ConfigError
from streamtable.runtime import _gc

pytestmark = pytest.mark.unit


@pytest.fixture
def thresholds() -> Iterator[tuple[int, int, int]]:
    """The thresholds before the test (700, 10, 10 here), put back after it."""
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield (700, 10, 10)
    while _gc._users:
        _gc.release()
    gc.set_threshold(*before)
    gc.unfreeze()


def test_the_collector_is_tuned_while_an_app_holds_it_and_restored_by_the_last(
    thresholds: tuple[int, int, int],
) -> None:
    _gc.acquire()
    assert gc.get_threshold() == (_gc.YOUNG_THRESHOLD, 10, 10)
    assert gc.get_freeze_count() > 0, "what existed at the start is frozen"
    _gc.acquire()  # a second app in the same process
    _gc.release()
    assert gc.get_threshold() == (_gc.YOUNG_THRESHOLD, 10, 10), "one app still runs"
    _gc.release()
    assert gc.get_threshold() == thresholds
    assert gc.get_freeze_count() == 0
    _gc.release()  # one release too many: nothing happens
    assert gc.get_threshold() == thresholds


def test_a_disabled_or_higher_threshold_is_kept(thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(0, 10, 10)  # 0: automatic collection off
    _gc.acquire()
    assert gc.get_threshold()[0] == 0
    _gc.release()
    gc.set_threshold(200_000, 5, 5)
    _gc.acquire()
    assert gc.get_threshold() == (200_000, 5, 5)
    _gc.release()
    assert gc.get_threshold() == (200_000, 5, 5)


def test_python_gc_takes_tuned_or_default_and_names_itself_otherwise() -> None:
    base = {"application_id": "a", "bootstrap_servers": "127.0.0.1:9092"}
    assert StreamsConfig(**base).python_gc == "tuned"
    assert StreamsConfig(**base, python_gc="default").python_gc == "default"
    with pytest.raises(ConfigError, match="python_gc"):
        StreamsConfig(**base, python_gc="off")


def test_an_apps_thread_holds_the_tuning_while_it_runs(thresholds: tuple[int, int, int]) -> None:
    seen: list[tuple[int, int, int]] = []
    _gc.tuning(lambda: seen.append(gc.get_threshold()), "tuned")()
    assert seen == [(_gc.YOUNG_THRESHOLD, 10, 10)]
    assert gc.get_threshold() == thresholds

    def fails() -> None:
        raise RuntimeError("the thread failed")

    with pytest.raises(RuntimeError):
        _gc.tuning(fails, "tuned")()
    assert gc.get_threshold() == thresholds, "restored when the thread fails too"
    _gc.tuning(lambda: seen.append(gc.get_threshold()), "default")()
    assert seen[-1] == thresholds

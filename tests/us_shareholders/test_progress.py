"""The restore progress bar (a StateRestoreListener) counts every partition's records and goes
away once the last partition is restored."""

from __future__ import annotations

import pytest

import streamtable as st
from us_shareholders.progress import RestoreProgress

pytestmark = pytest.mark.unit


def test_one_bar_for_every_partition_gone_when_all_are_restored() -> None:
    bar = RestoreProgress()
    listener: st.StateRestoreListener = bar  # the protocol the app takes
    listener.on_restore_start(("c", 0), "s", 10, 110)
    listener.on_restore_start(("c", 1), "s", 0, 50)
    listener.on_batch_restored(("c", 0), "s", 59, 50)
    assert (bar._total, bar._done) == (150, 50)
    listener.on_restore_end(("c", 0), "s", 100)
    assert bar._bar is not None  # partition 1 still restores
    listener.on_restore_end(("c", 1), "s", 50)
    assert bar._bar is None
    assert (bar._total, bar._done) == (0, 0)

"""What integration tests look at inside a running :class:`StreamsApp`: the parts of its
processing thread (:class:`StreamThread`: its clients, its task manager)."""

from __future__ import annotations

import streamtable as st
from streamtable.runtime._thread import StreamThread
from tests.support.kafka import DEFAULT_TIMEOUT_S, wait_until


def stream_thread(app: st.StreamsApp, timeout: float = DEFAULT_TIMEOUT_S) -> StreamThread:
    """The app's processing thread, once it has opened its clients (waited for)."""
    return wait_until(lambda: app._loop, "the app's thread to open its clients", timeout)


def task_states(app: st.StreamsApp) -> list[str]:
    """``<task id>:<STATE>`` of each active task (none before the thread opened its clients)."""
    loop = app._loop
    if loop is None:
        return []
    return sorted(f"{t.task_id}:{t.state.name}" for t in list(loop.tasks.tasks.values()))

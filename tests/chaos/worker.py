"""One StreamsApp of the fault harness, in its own process: ``python -m tests.chaos.worker SPEC``.

``SPEC`` is a JSON file written by the runner (topology kind, topic names, app settings, where
to dump). The app runs until SIGTERM. On SIGUSR1 it writes, atomically, its state, the
partitions it runs and the content of its local ``result`` store (None while not RUNNING; a
window store's windows keyed by ``key@start``).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import streamtable as st
from streamtable.errors import StoreNotReady
from tests.chaos.sessions import session_key
from tests.chaos.topologies import KINDS, WindowShape
from tests.chaos.windowed import window_key


def plain(value: Any) -> Any:
    """A store value as JSON: sets become sorted lists, tuples lists."""
    if isinstance(value, frozenset | set):
        return sorted(plain(v) for v in value)
    if isinstance(value, tuple | list):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


def result_store(app: st.StreamsApp) -> dict[str, Any]:
    """The local content of the ``result`` store: key -> value, a window store's keyed by
    ``key@start``; empty where there is none (a global join writes only an output topic)."""
    spec = app.topology.stores.get("result")
    if spec is None:
        return {}
    if spec.store_type == "window":
        found = app.window_store("result").all()
        return {window_key(w.key, w.window.start_ms): plain(v) for w, v in found}
    if spec.store_type == "session":
        sessions = app.session_store("result").all()
        return {session_key(w.key, w.window.start_ms, w.window.end_ms): v for w, v in sessions}
    return {str(k): plain(v) for k, v in app.store("result").all()}


def main() -> int:
    spec = json.loads(Path(sys.argv[1]).read_text())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    kind = KINDS[spec["kind"]]
    windows = spec.get("windows")
    topology = kind.build(spec["topics"], None if windows is None else WindowShape(**windows))
    app = st.StreamsApp(
        topology,
        st.StreamsConfig(
            application_id=spec["app_id"],
            bootstrap_servers=spec["bootstrap"],
            state_dir=Path(spec["state_dir"]),
            processing_guarantee=spec["guarantee"],
            commit_interval_ms=spec["commit_interval_ms"],
            num_standby_replicas=spec["standbys"],
            cache_max_bytes=spec["cache_max_bytes"],
            session_timeout_ms=spec["session_timeout_ms"],
        ),
    )
    dump = Path(spec["dump"])

    def write_dump(*_: Any) -> None:
        report: dict[str, Any] = {"pid": os.getpid(), "state": app.state.name}
        try:
            meta = app.local_metadata()
            report["active"] = sorted(meta.active.get("result", ()))
            report["standby"] = sorted(meta.standby.get("result", ()))
        except Exception as exc:  # before the app's metadata exists
            report["active"] = report["standby"] = []
            report["metadata_error"] = type(exc).__name__
        try:
            report["store"] = result_store(app)
        except StoreNotReady:
            report["store"] = None
        tmp = dump.with_suffix(".tmp")
        tmp.write_text(json.dumps(report))
        os.replace(tmp, dump)

    signal.signal(signal.SIGUSR1, write_dump)

    def ready(old: st.AppState, new: st.AppState) -> None:
        # run_until_signal handles SIGTERM from before start(): the runner may signal now.
        dump.with_suffix(".ready").touch()

    app.add_state_listener(ready)
    return app.run_until_signal()


if __name__ == "__main__":
    sys.exit(main())

"""An app that never reaches a broker, for tests that drive its internals directly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamtable as st


def offline_app(application_id: str) -> st.StreamsApp:
    """``events`` copied to ``copy``; its bootstrap server refuses connections and its state
    directory is a fresh temporary one. Never started: tests set its clients themselves."""
    builder = st.StreamsBuilder()
    builder.stream("events").to("copy")
    return st.StreamsApp(
        builder.build(),
        st.StreamsConfig(
            application_id=application_id,
            bootstrap_servers="127.0.0.1:1",
            state_dir=Path(tempfile.mkdtemp(prefix=f"{application_id}-")),
        ),
    )

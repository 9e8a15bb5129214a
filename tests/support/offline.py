"""An app that never reaches a broker, for tests that drive its internals directly, and a port
where no broker listens."""

from __future__ import annotations

import socket
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


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again when the socket is

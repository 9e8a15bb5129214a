"""A StreamsApp with its HTTP query server, as an instance of a cluster runs them in a test: the
server (uvicorn on an ephemeral port of 127.0.0.1, in a thread) is that instance's
``application_server``, serving (503) before the app advertises itself."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

import streamtable as st
from streamtable.query import create_query_app
from tests.support.kafka import wait_until


class Instance:
    """A StreamsApp plus its query server (uvicorn on 127.0.0.1, in a thread); ``config``:
    further :class:`~streamtable.StreamsConfig` settings."""

    def __init__(
        self, topology: st.Topology, app_id: str, bootstrap: str, state_dir: Path, **config: Any
    ):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self.sock.getsockname()[1]}"
        self.app = st.StreamsApp(
            topology,
            st.StreamsConfig(
                application_id=app_id,
                bootstrap_servers=bootstrap,
                state_dir=state_dir,
                application_server=self.address,
                commit_interval_ms=300,
                session_timeout_ms=6000,
                **config,
            ),
        )
        serving = uvicorn.Config(create_query_app(self.app), log_level="warning")
        self.server = uvicorn.Server(serving)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> None:
        self.thread.start()  # serving (503) before it advertises itself
        wait_until(lambda: self.server.started, f"query server {self.address} to start", 10)
        self.app.start()

    def stop_server(self) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(10)
        self.sock.close()

    def close(self) -> None:
        """Close the app, then its server (peers still routing to it get 503 meanwhile)."""
        self.app.close()
        self.stop_server()

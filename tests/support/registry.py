"""A real schema registry for tests: the one named by ``SCHEMA_REGISTRY_URL`` or Apicurio
Registry started by ``tools/registry/registry-local`` (its Confluent-compatible API)."""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass

from tests.support.kafka import REPO_ROOT

REGISTRY_LOCAL = REPO_ROOT / "tools" / "registry" / "registry-local"


@dataclass
class LocalRegistry:
    """A registry started by registry-local for this test session; ``stop`` ends it."""

    url: str
    started_here: bool
    start_seconds: float

    def stop(self) -> None:
        if self.started_here:
            subprocess.run(
                [str(REGISTRY_LOCAL), "stop"], check=True, capture_output=True, text=True
            )


def start_registry_local() -> LocalRegistry:
    """Start registry-local (a no-op if it already runs) and return its API's url.

    ``started_here`` is False when a registry from the same home was already running: it
    belongs to someone else and must outlive the session.
    """
    status = subprocess.run([str(REGISTRY_LOCAL), "status"], capture_output=True, text=True)
    already_running = status.returncode == 0
    began = time.monotonic()
    started = subprocess.run([str(REGISTRY_LOCAL), "start"], capture_output=True, text=True)
    lines = started.stdout.strip().splitlines()
    if started.returncode != 0 or not lines or not lines[-1].startswith("url="):
        raise RuntimeError(
            f"{REGISTRY_LOCAL} start failed (exit {started.returncode}):\n"
            f"{started.stdout}\n{started.stderr}"
        )
    return LocalRegistry(
        lines[-1].removeprefix("url="),
        started_here=not already_running,
        start_seconds=time.monotonic() - began,
    )

"""The real components a chaos run drives: its own broker and the app's instance processes."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.kafka import KAFKA_LOCAL, REPO_ROOT, wait_until


@dataclass
class Broker:
    """A kafka-local broker of the harness's own (its own home and port), so that bouncing it
    disturbs nobody else. ``stop()``/``start()`` keep its data, as a broker restart does."""

    port: int
    home: Path
    started_here: bool = False
    _lock_fd: int | None = None

    def lock(self) -> None:
        """Hold this broker for the life of the process: another chaos run on the same home
        fails at once instead of having its broker stopped under it."""
        self.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.home / "chaos.lock", os.O_CREAT | os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RuntimeError(
                f"another chaos run uses the broker in {self.home}; set CHAOS_KAFKA_HOME and "
                "CHAOS_KAFKA_PORT to run beside it"
            ) from None
        self._lock_fd = fd

    @property
    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "KAFKA_LOCAL_PORT": str(self.port),
            "KAFKA_LOCAL_HOME": str(self.home),
        }

    def _run(self, command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KAFKA_LOCAL), command], env=self.env, capture_output=True, text=True
        )

    def running(self) -> bool:
        return self._run("status").returncode == 0

    def start(self) -> str:
        done = self._run("start")
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines or not lines[-1].startswith("bootstrap="):
            raise RuntimeError(f"kafka-local start failed:\n{done.stdout}\n{done.stderr}")
        return lines[-1].removeprefix("bootstrap=")

    def stop(self) -> None:
        done = self._run("stop")
        if done.returncode != 0:
            raise RuntimeError(f"kafka-local stop failed:\n{done.stdout}\n{done.stderr}")

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class Instance:
    """One ``tests.chaos.worker`` process; ``number`` names it in reports."""

    number: int
    workdir: Path
    spec: dict[str, Any]
    proc: subprocess.Popen[bytes] | None = None
    paused: bool = False
    events: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"i{self.number}"

    @property
    def state_dir(self) -> Path:
        return self.workdir / f"{self.name}-state"

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    @property
    def dump_path(self) -> Path:
        return self.workdir / f"{self.name}.json"

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        spec_path = self.workdir / f"{self.name}.spec.json"
        spec_path.write_text(
            json.dumps({**self.spec, "state_dir": str(self.state_dir), "dump": str(self.dump_path)})
        )
        self.dump_path.with_suffix(".ready").unlink(missing_ok=True)
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos.worker", str(spec_path)],
                cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.note(f"started pid {self.proc.pid}")

    def note(self, what: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {what}")

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(30)
        self.paused = False
        self.note("killed (SIGKILL)")

    def wipe(self) -> None:
        shutil.rmtree(self.state_dir, ignore_errors=True)
        self.note("state dir deleted")

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)
        self.paused = True
        self.note("paused (SIGSTOP)")

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)
        self.paused = False
        self.note("resumed (SIGCONT)")

    def terminate(self) -> int | None:
        """SIGTERM: a clean close. None if the process did not exit within 90 s (then it is
        killed, and the caller reports it)."""
        assert self.proc is not None
        if self.paused:
            self.resume()
        ready = self.dump_path.with_suffix(".ready")  # before that, SIGTERM is not handled yet
        wait_until(lambda: ready.exists() or self.proc is None or self.proc.poll() is not None,
                   f"{self.name} to handle SIGTERM", 60.0)  # fmt: skip
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(30)
            self.note("did not stop within 90 s of SIGTERM: killed")
            return None
        self.note(f"closed (SIGTERM), exit {code}")
        return code

    def dump(self, timeout: float = 30.0) -> dict[str, Any]:
        """Ask the process for its state and local store (SIGUSR1) and return what it wrote."""
        assert self.proc is not None
        ready = self.dump_path.with_suffix(".ready")
        wait_until(ready.exists, f"{self.name} to listen for SIGUSR1", timeout)
        self.dump_path.unlink(missing_ok=True)
        self.proc.send_signal(signal.SIGUSR1)

        def written() -> dict[str, Any] | None:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode}")
            if not self.dump_path.exists():
                return None
            report: dict[str, Any] = json.loads(self.dump_path.read_text())
            return report

        return wait_until(written, f"{self.name} to write its dump", timeout)

    def tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

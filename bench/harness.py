"""The machinery of one ``make bench`` run: the broker, child processes, offsets and timing.

Workload modules (bench/seed.py, restore.py, raw.py, queries.py, digest.py) get a :class:`Ctx`
and start their processes as :class:`Child` (stdout lines kept with their arrival time, stderr to
``.cache/bench-logs/<stamp>/``); :class:`Offsets` tells when a group has committed a topic.
"""

from __future__ import annotations

import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.datagen import generate
from bench.oracle import Holders, expected_holders
from bench.results import Failure, Machine
from bench.settings import Settings, env_int

REPO = Path(__file__).resolve().parent.parent
BENCH = REPO / "bench"
RESULTS = BENCH / "results"
REFERENCE = BENCH / "reference"
STATE_ROOT = REPO / ".cache" / "bench-state"
KAFKA_LOCAL = REPO / "tools" / "kafka" / "kafka-local"
# The Apache Kafka versions that tools/kafka/pom.xml (broker) and bench/reference/pom.xml (Kafka
# Streams) pin; recorded with every result.
KAFKA_VERSION = "broker 4.3.1, Kafka Streams 4.4.0"
PY = sys.executable

_T0 = time.monotonic()

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- the broker -----------------------------------------------------------------------------------


@contextmanager
def broker() -> Iterator[tuple[str, int | None]]:
    """KAFKA_BOOTSTRAP_SERVERS, or a kafka-local broker on a dedicated port and home."""
    given = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if given:
        log(f"using the cluster at {given}")
        yield given, None
        return
    env = {
        **os.environ,
        "KAFKA_LOCAL_PORT": str(env_int("BENCH_KAFKA_PORT", 19192)),
        "KAFKA_LOCAL_HOME": os.environ.get("BENCH_KAFKA_HOME")
        or str(REPO / ".cache" / "bench-kafka"),
    }
    was_running = (
        subprocess.run([str(KAFKA_LOCAL), "status"], env=env, capture_output=True).returncode == 0
    )
    log("starting kafka-local" if not was_running else "kafka-local already runs: reusing it")
    try:
        out = subprocess.run(
            [str(KAFKA_LOCAL), "start"], env=env, check=True, stdout=subprocess.PIPE, text=True
        ).stdout
        last = out.strip().splitlines()[-1]
        if not last.startswith("bootstrap="):
            raise RuntimeError(f"unexpected kafka-local output: {last!r}")
        status = subprocess.run(
            [str(KAFKA_LOCAL), "status"], env=env, capture_output=True, text=True
        ).stdout
        pid = re.search(r"pid=(\d+)", status)
        yield last.removeprefix("bootstrap="), int(pid.group(1)) if pid else None
    finally:
        if not was_running:
            log("stopping kafka-local")
            subprocess.run([str(KAFKA_LOCAL), "stop"], env=env, check=False)


# -- offsets --------------------------------------------------------------------------------------


class Offsets:
    """End offsets and a group's committed offsets."""

    def __init__(self, bootstrap: str) -> None:
        # log_level 2: quiet about the broker going away when the run stops it at the end (errors
        # still reach us as exceptions from the futures)
        self.admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2})
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "bench-watermarks",
                "enable.auto.commit": False,
            }
        )

    def close(self) -> None:
        self.consumer.close()

    def topics(self, prefix: str) -> list[str]:
        return sorted(t for t in self.admin.list_topics(timeout=30).topics if t.startswith(prefix))

    def ends(self, topic: str) -> dict[int, int] | None:
        meta = self.consumer.list_topics(topic, timeout=30).topics.get(topic)
        if meta is None or meta.error is not None:
            return None
        return {
            p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
            for p in meta.partitions
        }

    def committed(self, group: str) -> dict[tuple[str, int], int]:
        futures = self.admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
        result = next(iter(futures.values())).result(30)
        return {
            (tp.topic, tp.partition): tp.offset
            for tp in result.topic_partitions
            if tp.offset is not None and tp.offset >= 0
        }

    def create(self, topic: str, partitions: int) -> None:
        """A plain (not compacted) topic, e.g. a W1 run's output."""
        for future in self.admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            future.result(60)

    def delete_with_prefix(self, prefix: str) -> None:
        """Every topic whose name starts with ``prefix``; failures are ignored (best effort)."""
        topics = self.topics(prefix)
        if topics:
            for future in self.admin.delete_topics(topics, operation_timeout=60).values():
                with suppress(Exception):
                    future.result(60)


# -- child processes ------------------------------------------------------------------------------


class Child:
    """A benchmark process whose stdout lines are kept with their arrival time."""

    def __init__(
        self, argv: list[str], name: str, stderr_path: Path, env: dict[str, str] | None = None
    ) -> None:
        self.name = name
        self.started = time.monotonic()
        self._stderr = stderr_path.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=REPO, stdout=subprocess.PIPE, stderr=self._stderr, text=True, env=env
        )
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.lines.append((time.monotonic(), line.strip()))

    def first(self, pred: Callable[[str], bool]) -> tuple[float, str] | None:
        with self._lock:
            return next(((t, line) for t, line in self.lines if pred(line)), None)

    def output(self) -> list[tuple[float, str]]:
        """Every stdout line so far, with its arrival time."""
        with self._lock:
            return list(self.lines)

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}; see {self._stderr.name}")
        if self.first(lambda line: line == "STATE ERROR") is not None:
            raise RuntimeError(f"{self.name} reached ERROR; see {self._stderr.name}")

    def wait_exit(self, timeout: float) -> int:
        """Wait for the process to exit and its stdout to be read; its exit code."""
        code = self.proc.wait(timeout)
        self._reader.join(10)
        return code

    def cpu_s(self) -> float | None:
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float | None:
        """VmHWM of the process (the peak resident set size so far), in MiB."""
        return peak_rss_mb(self.proc.pid)

    def stop(self, timeout: float = 90.0) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log(f"{self.name} did not stop within {timeout:.0f}s: killing pid {self.proc.pid}")
                self.proc.kill()
                self.proc.wait(30)
        self._reader.join(10)
        self._stderr.close()
        return self.proc.returncode


_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | None) -> float | None:
    """User + system CPU time of ``pid`` so far (all its threads), from /proc/<pid>/stat."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime (fields 14 and 15)


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM of ``pid`` (its peak resident set size so far), in MiB."""
    with suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return None


def process_tree(root: int) -> list[int]:
    """``root`` and its live descendants (from the parent pids in /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError, ValueError):
            pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(pid)
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def tree_cpu_s(root: int) -> float | None:
    """CPU seconds of ``root``'s process tree: the live processes' own, plus what ``root`` has
    collected from children that already exited (cutime + cstime)."""
    try:
        fields = Path(f"/proc/{root}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return reaped + sum(cpu_seconds(pid) or 0.0 for pid in process_tree(root))


def tree_peak_rss_mb(root: int) -> float | None:
    """The sum of the peak resident sets of ``root``'s live process tree, in MiB (an upper
    bound of the tree's peak; the process's own when it has no children)."""
    peaks = [peak_rss_mb(pid) for pid in process_tree(root)]
    return None if not peaks or peaks[0] is None else sum(p for p in peaks if p is not None)


def delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


# -- what a workload gets -------------------------------------------------------------------------


@dataclass(frozen=True)
class Impl:
    """How to start one implementation of the seed topology."""

    key: str  # "streamtable" or "kstreams"
    java_classpath: str = ""
    extra_flags: tuple[str, ...] = ()  # appended to every run's flags (W7's memory budget)

    def argv(
        self,
        bootstrap: str,
        app_id: str,
        input_topic: str,
        output_topic: str,
        state_dir: Path,
        guarantee: str,
        commit_ms: int,
        cache_bytes: int,
    ) -> list[str]:
        flags = [
            "--bootstrap", bootstrap,
            "--application-id", app_id,
            "--input", input_topic,
            "--output", output_topic,
            "--state-dir", str(state_dir),
            "--guarantee", guarantee,
            "--commit-interval-ms", str(commit_ms),
            "--cache-max-bytes", str(cache_bytes),
            *self.extra_flags,
        ]  # fmt: skip
        if self.key == "streamtable":
            return [PY, "-m", "bench.runner", "streamtable", *flags]
        return ["java", "-cp", self.java_classpath, "dev.streamtable.reference.BenchApp", *flags]


@dataclass
class Ctx:
    """One run's broker, input and logs, shared by its workloads."""

    settings: Settings
    bootstrap: str
    offsets: Offsets
    run_id: str
    input_topic: str
    records: int
    logs: Path
    kstreams: Impl
    broker_pid: int | None = None
    streamtable: Impl = field(default_factory=lambda: Impl("streamtable"))
    _expected: Holders | None = field(default=None, repr=False)

    def expected(self) -> Holders:
        """The oracle's final per-client sets for this run's input (computed once)."""
        if self._expected is None:
            self._expected = expected_holders(generate(self.settings.data))
        return self._expected

    def child(self, argv: list[str], name: str, env: dict[str, str] | None = None) -> Child:
        """Start ``argv`` as ``name``, its stderr in ``<logs>/<name>.stderr.log``."""
        return Child(argv, name, self.logs / f"{name}.stderr.log", env)


def guarded(name: str, run: Callable[[], T]) -> T | Failure:
    """W3/W5 are extras: a failure is reported in the results instead of ending the run."""
    try:
        return run()
    except Exception as exc:  # reported; the rest of the run stands
        log(f"{name} failed: {exc!r}")
        return Failure(error=repr(exc))


def machine() -> Machine:
    cpu = "unknown"
    with suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 1024 / 1024, 1)
    java = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
    java_version = java.splitlines()[0] if java else "unknown"
    return Machine(
        nproc=os.cpu_count(),
        memory_gib=mem_gib,
        cpu_model=cpu,
        python=platform.python_version(),
        java=java_version,
        kernel=platform.release(),
        kafka=KAFKA_VERSION,
    )

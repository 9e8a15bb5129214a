"""``make bench``: streamtable vs. Kafka Streams vs. a raw consumer on one broker, in one run.

Writes ``bench/results/<UTC timestamp>.json``, ``bench/results/latest.json`` and
``bench/RESULTS.md``. Progress goes to stderr; each child process's stderr goes to
``.cache/bench-logs/<UTC timestamp>/``. See bench/RESULTS.md for the definitions.

Environment: ``BENCH_RECORDS`` (input records, default 1,000,000), ``BENCH_REPEATS`` (runs per
figure, the median is reported; default 1: one repeat of everything at 1,000,000 records takes
about 6-7 minutes on the 2-core development machine, two would not fit in 10 minutes),
``BENCH_POSITIONS``, ``BENCH_CLIENTS``, ``BENCH_PARTITIONS``, ``BENCH_TIMEOUT_S`` (per workload
run, default 600),
``BENCH_COMMIT_MS_ALOS`` / ``BENCH_COMMIT_MS_EOS`` (1000 / 100), ``BENCH_CACHE_BYTES`` (10 MiB),
``KAFKA_BOOTSTRAP_SERVERS`` (use that cluster instead of starting kafka-local on port
``BENCH_KAFKA_PORT``, default 19192, home ``.cache/bench-kafka``), ``BENCH_SKIP`` (workloads to
leave out, comma-separated: ``w1`` (with it the raw consumer, W2 and W4), ``w2``, ``w3``, ``w5``),
``BENCH_W3_KEYS`` (100,000), ``BENCH_W5_CLIENTS`` / ``BENCH_W5_POSITIONS`` (5,000 / 25,000),
``BENCH_PROCESSES`` (the extra W1 at_least_once run with that many streamtable processes of one
application; default: the number of CPUs; 1 leaves the run out).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from bench.datagen import DataSettings, create_topic, produce

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

WORKLOADS = ("w1", "w2", "w3", "w5")

_T0 = time.monotonic()


def log(message: str) -> None:
    print(f"[bench {time.monotonic() - _T0:7.1f}s] {message}", file=sys.stderr, flush=True)


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "").replace("_", "").replace(",", "")
    return int(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    data: DataSettings
    repeats: int
    timeout_s: float
    commit_ms_alos: int
    commit_ms_eos: int
    cache_bytes: int
    skip: frozenset[str] = frozenset()
    w3_keys: int = 100_000
    w5_clients: int = 5_000
    w5_positions: int = 25_000
    processes: int = 1

    def runs(self, workload: str) -> bool:
        return workload not in self.skip and not (workload == "w2" and "w1" in self.skip)

    @staticmethod
    def from_env() -> Settings:
        records = env_int("BENCH_RECORDS", 1_000_000)
        positions = env_int("BENCH_POSITIONS", max(1, records // 10))
        data = DataSettings(
            records=records,
            positions=positions,
            clients=env_int("BENCH_CLIENTS", max(1, positions // 10)),
            partitions=env_int("BENCH_PARTITIONS", 4),
        )
        return Settings(
            data=data,
            repeats=max(1, env_int("BENCH_REPEATS", 1)),
            timeout_s=float(env_int("BENCH_TIMEOUT_S", 600)),
            commit_ms_alos=env_int("BENCH_COMMIT_MS_ALOS", 1000),
            commit_ms_eos=env_int("BENCH_COMMIT_MS_EOS", 100),
            cache_bytes=env_int("BENCH_CACHE_BYTES", 10 * 1024 * 1024),
            skip=skipped(os.environ.get("BENCH_SKIP", "")),
            w3_keys=env_int("BENCH_W3_KEYS", 100_000),
            w5_clients=env_int("BENCH_W5_CLIENTS", 5_000),
            w5_positions=env_int("BENCH_W5_POSITIONS", 25_000),
            processes=env_int("BENCH_PROCESSES", os.cpu_count() or 1),
        )

    def commit_ms(self, guarantee: str) -> int:
        return self.commit_ms_eos if guarantee == "exactly_once_v2" else self.commit_ms_alos


def skipped(raw: str) -> frozenset[str]:
    names = frozenset(w.strip().lower() for w in raw.split(",") if w.strip())
    unknown = names - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"BENCH_SKIP: unknown workloads {sorted(unknown)}; known: {WORKLOADS}")
    return names


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
        "KAFKA_LOCAL_HOME": str(REPO / ".cache" / "bench-kafka"),
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

    def matching(self, prefix: str) -> list[tuple[float, str]]:
        with self._lock:
            return [(t, line) for t, line in self.lines if line.startswith(prefix)]

    def check_alive(self) -> None:
        code = self.proc.poll()
        if code is not None:
            raise RuntimeError(f"{self.name} exited with {code}; see {self._stderr.name}")
        if self.first(lambda line: line == "STATE ERROR") is not None:
            raise RuntimeError(f"{self.name} reached ERROR; see {self._stderr.name}")

    def cpu_s(self) -> float | None:
        return cpu_seconds(self.proc.pid)

    def peak_rss_mb(self) -> float | None:
        """VmHWM of the process (the peak resident set size so far), in MiB."""
        with suppress(OSError):
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return None

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


@dataclass(frozen=True)
class Impl:
    """How to start one implementation of the seed topology."""

    key: str  # "streamtable" or "kstreams"
    java_classpath: str = ""

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
        ]  # fmt: skip
        if self.key == "streamtable":
            return [PY, "-m", "bench.runner", "streamtable", *flags]
        return ["java", "-cp", self.java_classpath, "dev.streamtable.reference.BenchApp", *flags]


# -- workloads ------------------------------------------------------------------------------------


@dataclass
class Ctx:
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
    apps: list[str] = field(default_factory=list)


def w1_done(ctx: Ctx, app_id: str, input_ends: dict[int, int], eos: bool) -> tuple[bool, int]:
    """Whether the group's committed offsets reached the end of the input and repartition topics.

    Under exactly-once every transaction ends with a commit marker, which takes an offset but is
    no record: there a repartition partition counts as done at end - 1 (a committed offset can
    reach end - 1 only once the last record before the final marker has been processed).
    Returns (done, input records committed so far).
    """
    committed = ctx.offsets.committed(app_id)
    consumed = sum(
        min(committed.get((ctx.input_topic, p), 0), end) for p, end in input_ends.items()
    )
    if any(committed.get((ctx.input_topic, p), 0) < end for p, end in input_ends.items()):
        return False, consumed
    repartition = [t for t in ctx.offsets.topics(app_id + "-") if t.endswith("-repartition")]
    if not repartition:
        return False, consumed
    slack = 1 if eos else 0
    for topic in repartition:
        ends = ctx.offsets.ends(topic)
        if ends is None:
            return False, consumed
        for p, end in ends.items():
            if end > 0 and committed.get((topic, p), 0) < end - slack:
                return False, consumed
    return True, consumed


def run_w1(
    ctx: Ctx, impl: Impl, guarantee: str, label: str, processes: int = 1
) -> tuple[dict[str, Any], Restart]:
    """One W1 run; ``processes`` > 1 starts that many instances of the same application (each
    its own state dir), which share the input's partitions through the consumer group."""
    s = ctx.settings
    app_id = f"{ctx.run_id}-{label}"
    ctx.apps.append(app_id)
    output = f"{app_id}-out"
    create_output(ctx, output)
    state_dir = STATE_ROOT / app_id
    shutil.rmtree(state_dir, ignore_errors=True)

    def argv_for(directory: Path) -> list[str]:
        return impl.argv(
            ctx.bootstrap,
            app_id,
            ctx.input_topic,
            output,
            directory,
            guarantee,
            s.commit_ms(guarantee),
            s.cache_bytes,
        )

    argv = argv_for(state_dir)
    input_ends = ctx.offsets.ends(ctx.input_topic)
    assert input_ends is not None
    log(f"W1 {label}: starting" + (f" {processes} processes" if processes > 1 else ""))
    broker_cpu = cpu_seconds(ctx.broker_pid)
    children = [
        Child(
            argv if processes == 1 else argv_for(state_dir / f"p{i}"),
            label if processes == 1 else f"{label}-p{i}",
            ctx.logs / (f"{label}.stderr.log" if processes == 1 else f"{label}-p{i}.stderr.log"),
        )
        for i in range(processes)
    ]
    started = children[0].started
    result: dict[str, Any] = {
        "label": label, "app_id": app_id, "guarantee": guarantee, "processes": processes
    }  # fmt: skip
    try:
        last_report = time.monotonic()
        while True:
            for child in children:
                child.check_alive()
            done, consumed = w1_done(ctx, app_id, input_ends, guarantee == "exactly_once_v2")
            now = time.monotonic()
            if done:
                break
            if now - started > s.timeout_s:
                raise RuntimeError(f"W1 {label}: not done after {s.timeout_s:.0f}s")
            if now - last_report >= 5:
                log(
                    f"W1 {label}: {consumed:,}/{ctx.records:,} input records committed "
                    f"({now - started:.0f}s)"
                )
                last_report = now
            time.sleep(0.1)
        elapsed = now - started
        running = children[0].first(lambda line: line == "STATE RUNNING")
        rss = [c.peak_rss_mb() for c in children]
        cpu = [c.cpu_s() for c in children]
        result.update(
            elapsed_s=round(elapsed, 3),
            rps=round(ctx.records / elapsed, 1),
            startup_to_running_s=None if running is None else round(running[0] - started, 3),
            peak_rss_mb=None if None in rss else max(r for r in rss if r is not None),
            cpu_s=None if None in cpu else sum(c for c in cpu if c is not None),
            broker_cpu_s=delta(broker_cpu, cpu_seconds(ctx.broker_pid)),
        )
        log(f"W1 {label}: {elapsed:.1f}s, {ctx.records / elapsed:,.0f} records/s")
    finally:
        codes = [child.stop() for child in children]
        result["exit_code"] = next((c for c in codes if c), codes[0])
    return result, Restart(impl, argv, app_id, state_dir, label)


@dataclass(frozen=True)
class Restart:
    """What W2 needs to restart a finished W1 run."""

    impl: Impl
    argv: list[str]
    app_id: str
    state_dir: Path
    label: str


def wait_group_empty(ctx: Ctx, group: str, timeout_s: float = 90.0) -> None:
    """Kafka Streams does not leave the group on close: wait out the old member's session."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        futures = ctx.offsets.admin.describe_consumer_groups([group])
        description = next(iter(futures.values())).result(30)
        if not description.members:
            return
        time.sleep(1)
    log(f"group {group} still has members after {timeout_s:.0f}s; restarting anyway")


def run_w2(ctx: Ctx, restart: Restart) -> dict[str, Any]:
    """Wipe the state dir, restart with the same application id, time until RUNNING."""
    impl, argv, state_dir, label = restart.impl, restart.argv, restart.state_dir, restart.label
    wait_group_empty(ctx, restart.app_id)
    shutil.rmtree(state_dir, ignore_errors=True)
    log(f"W2 {label}: state dir wiped, restarting")
    child = Child(argv, f"{label}-restore", ctx.logs / f"{label}-restore.stderr.log")
    try:
        while True:
            child.check_alive()
            running = child.first(lambda line: line == "STATE RUNNING")
            starts = child.matching("RESTORE_START")
            if impl.key == "streamtable":
                total = child.first(lambda line: line.startswith("RESTORED_TOTAL "))
                if running is not None and total is not None:
                    restored = int(total[1].split()[1])
                    end = running[0]
                    break
            else:
                ends = child.matching("RESTORED ")
                if running is not None and len(ends) >= len(starts):
                    restored = sum(int(line.split()[3]) for _, line in ends)
                    end = max([running[0]] + [t for t, _ in ends])
                    break
            if time.monotonic() - child.started > ctx.settings.timeout_s:
                raise RuntimeError(f"W2 {label}: not RUNNING after {ctx.settings.timeout_s:.0f}s")
            time.sleep(0.05)
        elapsed = end - child.started
        phase = end - starts[0][0] if starts else None
        result = {
            "restored_records": restored,
            "elapsed_s": round(elapsed, 3),
            "restore_phase_s": None if phase is None else round(phase, 3),
            "rps": round(restored / phase, 1) if phase else None,
            "peak_rss_mb": child.peak_rss_mb(),
        }
        log(
            f"W2 {label}: {restored:,} records restored; restore phase "
            f"{fmt(phase, 1)}s, spawn to RUNNING {elapsed:.1f}s"
        )
    finally:
        result_code = child.stop()
    result["exit_code"] = result_code
    return result


def delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else round(after - before, 2)


def run_raw(ctx: Ctx) -> dict[str, Any]:
    log("W1 raw consumer: starting")
    child = Child(
        [PY, "-m", "bench.runner", "raw", "--bootstrap", ctx.bootstrap, "--input", ctx.input_topic],
        "raw",
        ctx.logs / "raw.stderr.log",
    )
    child.proc.wait(ctx.settings.timeout_s)
    child._reader.join(10)
    done = child.first(lambda line: line.startswith("DONE "))
    if done is None or child.proc.returncode != 0:
        raise RuntimeError(f"raw consumer failed (exit {child.proc.returncode})")
    elapsed = done[0] - child.started
    read = int(done[1].split()[1])
    child.stop()
    log(f"W1 raw consumer: {elapsed:.1f}s, {read / elapsed:,.0f} records/s")
    return {
        "elapsed_s": round(elapsed, 3),
        "rps": round(read / elapsed, 1),
        "records_read": read,
        "in_process_s": float(done[1].split()[2]),
    }


def create_output(ctx: Ctx, topic: str) -> None:
    futures = ctx.offsets.admin.create_topics([NewTopic(topic, ctx.settings.data.partitions, 1)])
    for future in futures.values():
        future.result(60)


def delete_run_topics(offsets: Offsets, run_id: str) -> None:
    topics = offsets.topics(run_id)
    if topics:
        for future in offsets.admin.delete_topics(topics, operation_timeout=60).values():
            with suppress(Exception):
                future.result(60)


def run_w3(ctx: Ctx) -> dict[str, Any]:
    """Interactive queries (bench/queries.py); streamtable only."""
    from bench import queries

    def start(argv: list[str], name: str) -> Child:
        return Child(argv, name, ctx.logs / f"{name}.stderr.log")

    return queries.measure(
        bootstrap=ctx.bootstrap,
        admin=ctx.offsets.admin,
        run_id=ctx.run_id,
        keys=ctx.settings.w3_keys,
        partitions=ctx.settings.data.partitions,
        state_root=STATE_ROOT,
        start_child=start,
        committed=ctx.offsets.committed,
        ends=ctx.offsets.ends,
        ports=(free_port(), free_port()),
        timeout_s=min(ctx.settings.timeout_s, 300),
        log=log,
    )


def run_w5(ctx: Ctx) -> dict[str, Any]:
    """The weekly digest of us-shareholders (bench/digest.py); streamtable only."""
    from bench import digest

    def start(argv: list[str], name: str, env: dict[str, str]) -> Child:
        return Child(argv, name, ctx.logs / f"{name}.stderr.log", env)

    mail = ctx.logs / "w5-mail"
    try:
        return digest.measure(
            bootstrap=ctx.bootstrap,
            run_id=ctx.run_id,
            clients=ctx.settings.w5_clients,
            positions=ctx.settings.w5_positions,
            state_root=STATE_ROOT,
            mail_dir=mail,
            start_child=start,
            committed=ctx.offsets.committed,
            ends=ctx.offsets.ends,
            topics_with_prefix=ctx.offsets.topics,
            port=free_port(),
            timeout_s=min(ctx.settings.timeout_s, 300),
            log=log,
        )
    finally:
        shutil.rmtree(mail, ignore_errors=True)


def guarded(name: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """W3/W5 are extras: a failure is reported in the results instead of ending the run."""
    try:
        return run()
    except Exception as exc:  # reported; the rest of the run stands
        log(f"{name} failed: {exc!r}")
        return {"error": repr(exc)}


# -- machine and report ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
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
    return {
        "nproc": os.cpu_count(),
        "memory_gib": mem_gib,
        "cpu_model": cpu,
        "python": platform.python_version(),
        "java": java_version,
        "kernel": platform.release(),
        "kafka": KAFKA_VERSION,
    }


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarize(
    settings: Settings,
    runs: list[dict[str, Any]],
    mach: dict[str, Any],
    extras: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    def pick(label: str, *path: str) -> float | None:
        values: list[float | None] = []
        for run in runs:
            node: Any = run.get(label)
            for key in path:
                node = node.get(key) if isinstance(node, dict) else None
            values.append(node)
        return median(values)

    w1 = {
        "streamtable_alos_rps": pick("st_alos", "rps"),
        "streamtable_eos_rps": pick("st_eos", "rps"),
        "kstreams_alos_rps": pick("ks_alos", "rps"),
        "kstreams_eos_rps": pick("ks_eos", "rps"),
        "raw_consumer_rps": pick("raw", "rps"),
        "streamtable_alos_processes": settings.processes if settings.processes > 1 else None,
        "streamtable_alos_processes_rps": pick("st_alos_procs", "rps"),
    }
    w1_cpu = {
        "streamtable_alos_cpu_s": pick("st_alos", "cpu_s"),
        "streamtable_eos_cpu_s": pick("st_eos", "cpu_s"),
        "kstreams_alos_cpu_s": pick("ks_alos", "cpu_s"),
        "kstreams_eos_cpu_s": pick("ks_eos", "cpu_s"),
        "broker_cpu_s_during_streamtable_alos": pick("st_alos", "broker_cpu_s"),
        "broker_cpu_s_during_streamtable_eos": pick("st_eos", "broker_cpu_s"),
        "broker_cpu_s_during_kstreams_alos": pick("ks_alos", "broker_cpu_s"),
        "broker_cpu_s_during_kstreams_eos": pick("ks_eos", "broker_cpu_s"),
    }
    w1.update(w1_cpu)
    w2 = {
        "streamtable_restore_rps": pick("st_alos", "restore", "rps"),
        "kstreams_restore_rps": pick("ks_alos", "restore", "rps"),
        "streamtable_restored_records": pick("st_alos", "restore", "restored_records"),
        "kstreams_restored_records": pick("ks_alos", "restore", "restored_records"),
        "streamtable_time_to_running_s": pick("st_alos", "restore", "elapsed_s"),
        "kstreams_time_to_running_s": pick("ks_alos", "restore", "elapsed_s"),
    }
    extras = extras or {}
    q = extras.get("w3", {})
    w3: dict[str, Any] = {
        "local_get_p50_ms": q.get("local_get", {}).get("p50_ms"),
        "local_get_p99_ms": q.get("local_get", {}).get("p99_ms"),
        "routed_get_p50_ms": q.get("routed_get", {}).get("p50_ms"),
        "routed_get_p99_ms": q.get("routed_get", {}).get("p99_ms"),
        "scan_100k_s": q.get("scan_s"),
        "scan_100k_s_by_page_limit": q.get("scan_s_by_limit"),
        "scan_keys": q.get("scan_keys"),
        "local_gets": q.get("local_get", {}).get("n"),
        "routed_gets": q.get("routed_get", {}).get("n"),
        "kstreams": "none: Kafka Streams has no built-in HTTP query server",
    }
    if "w3" not in extras:
        w3["skipped"] = "BENCH_SKIP"
    elif "error" in q:
        w3["error"] = q["error"]
    w4 = {
        "streamtable_rss_mb": pick("st_alos", "peak_rss_mb"),
        "kstreams_rss_mb": pick("ks_alos", "peak_rss_mb"),
        "streamtable_eos_rss_mb": pick("st_eos", "peak_rss_mb"),
        "kstreams_eos_rss_mb": pick("ks_eos", "peak_rss_mb"),
    }
    d = extras.get("w5", {})
    w5: dict[str, Any] = {
        "jobs_per_s": d.get("jobs_per_s"),
        "emails_per_s": d.get("emails_per_s"),
        "jobs": d.get("jobs"),
        "emails": d.get("emails"),
        "jobs_s": d.get("jobs_s"),
        "emails_s": d.get("emails_s"),
        "clients": d.get("clients"),
        "positions": d.get("positions"),
        "kstreams": "none: the digest service exists only on streamtable",
    }
    if "w5" not in extras:
        w5["skipped"] = "BENCH_SKIP"
    elif "error" in d:
        w5["error"] = d["error"]
    ratios = {
        "w1_alos_streamtable_over_kstreams": ratio(
            w1["streamtable_alos_rps"], w1["kstreams_alos_rps"]
        ),
        "w1_eos_streamtable_over_kstreams": ratio(
            w1["streamtable_eos_rps"], w1["kstreams_eos_rps"]
        ),
        "w1_streamtable_alos_over_raw": ratio(w1["streamtable_alos_rps"], w1["raw_consumer_rps"]),
        "w1_streamtable_eos_over_raw": ratio(w1["streamtable_eos_rps"], w1["raw_consumer_rps"]),
        "w1_kstreams_alos_over_raw": ratio(w1["kstreams_alos_rps"], w1["raw_consumer_rps"]),
        "w1_streamtable_alos_processes_over_raw": ratio(
            w1["streamtable_alos_processes_rps"], w1["raw_consumer_rps"]
        ),
        "w1_streamtable_alos_processes_over_kstreams": ratio(
            w1["streamtable_alos_processes_rps"], w1["kstreams_alos_rps"]
        ),
        "w1_streamtable_eos_over_alos": ratio(
            w1["streamtable_eos_rps"], w1["streamtable_alos_rps"]
        ),
        "w1_kstreams_eos_over_alos": ratio(w1["kstreams_eos_rps"], w1["kstreams_alos_rps"]),
        "w2_restore_streamtable_over_kstreams": ratio(
            w2["streamtable_restore_rps"], w2["kstreams_restore_rps"]
        ),
        "w2_time_to_running_streamtable_over_kstreams": ratio(
            w2["streamtable_time_to_running_s"], w2["kstreams_time_to_running_s"]
        ),
        "w4_rss_streamtable_over_kstreams": ratio(w4["streamtable_rss_mb"], w4["kstreams_rss_mb"]),
        "w1_alos_cpu_streamtable_over_kstreams": ratio(
            w1_cpu["streamtable_alos_cpu_s"], w1_cpu["kstreams_alos_cpu_s"]
        ),
        "w1_eos_cpu_streamtable_over_kstreams": ratio(
            w1_cpu["streamtable_eos_cpu_s"], w1_cpu["kstreams_eos_cpu_s"]
        ),
    }
    return {
        "records": settings.data.records,
        "repeats": len(runs),
        "machine": mach,
        "settings": {
            "data": settings.data.describe(),
            "commit_interval_ms": {
                "at_least_once": settings.commit_ms_alos,
                "exactly_once_v2": settings.commit_ms_eos,
            },
            "cache_max_bytes": settings.cache_bytes,
            "threads": 1,
            "kstreams_jvm_flags": "none (JVM defaults)",
        },
        "w1": w1,
        "w2": w2,
        "w3": w3,
        "w4": w4,
        "w5": w5,
        "ratios": ratios,
    }


def fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float | int):
        return f"{value:,.{digits}f}"
    return str(value)


def write_markdown(summary: dict[str, Any], stamp: str, wall_s: float, path: Path) -> None:
    w1, w2, w4, r = summary["w1"], summary["w2"], summary["w4"], summary["ratios"]
    m, s = summary["machine"], summary["settings"]
    d = s["data"]
    rows = [
        ("W1 seed, at_least_once (records/s)", w1["streamtable_alos_rps"], w1["kstreams_alos_rps"],
         r["w1_alos_streamtable_over_kstreams"]),
        ("W1 seed, exactly_once_v2 (records/s)", w1["streamtable_eos_rps"], w1["kstreams_eos_rps"],
         r["w1_eos_streamtable_over_kstreams"]),
        ("W1 at_least_once: app CPU (s)", w1["streamtable_alos_cpu_s"],
         w1["kstreams_alos_cpu_s"], r["w1_alos_cpu_streamtable_over_kstreams"]),
        ("W1 exactly_once_v2: app CPU (s)", w1["streamtable_eos_cpu_s"],
         w1["kstreams_eos_cpu_s"], r["w1_eos_cpu_streamtable_over_kstreams"]),
        ("W1 at_least_once: broker CPU meanwhile (s)", w1["broker_cpu_s_during_streamtable_alos"],
         w1["broker_cpu_s_during_kstreams_alos"], ratio(w1["broker_cpu_s_during_streamtable_alos"],
                                                        w1["broker_cpu_s_during_kstreams_alos"])),
        ("W1 exactly_once_v2: broker CPU meanwhile (s)", w1["broker_cpu_s_during_streamtable_eos"],
         w1["broker_cpu_s_during_kstreams_eos"], ratio(w1["broker_cpu_s_during_streamtable_eos"],
                                                       w1["broker_cpu_s_during_kstreams_eos"])),
        ("W2 restore (records/s)", w2["streamtable_restore_rps"], w2["kstreams_restore_rps"],
         r["w2_restore_streamtable_over_kstreams"]),
        ("W2 records restored", w2["streamtable_restored_records"],
         w2["kstreams_restored_records"], None),
        ("W2 start to RUNNING (s)", w2["streamtable_time_to_running_s"],
         w2["kstreams_time_to_running_s"], r["w2_time_to_running_streamtable_over_kstreams"]),
        ("W4 peak RSS, W1 at_least_once (MiB)", w4["streamtable_rss_mb"], w4["kstreams_rss_mb"],
         r["w4_rss_streamtable_over_kstreams"]),
        ("W4 peak RSS, W1 exactly_once_v2 (MiB)", w4["streamtable_eos_rss_mb"],
         w4["kstreams_eos_rss_mb"], ratio(w4["streamtable_eos_rss_mb"], w4["kstreams_eos_rss_mb"])),
    ]  # fmt: skip
    lines = [
        "# Benchmark results",
        "",
        f"Generated by `make bench` at {stamp} (wall time {wall_s:.0f} s); raw data in",
        "`bench/results/latest.json`. Each figure is the median of "
        f"**{summary['repeats']}** run(s) (`BENCH_REPEATS`). Absolute numbers on a shared machine "
        "are noise; read the ratios, taken in the same run on the same broker. Profiles, and "
        "what stands between these figures and the goals: `bench/PROFILES.md`.",
        "",
        f"| workload | streamtable | Kafka Streams {m['kafka']} | streamtable / Kafka Streams |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, a, b, q in rows:
        digits = 1 if "MiB" in name or "(s)" in name else 0
        lines.append(f"| {name} | {fmt(a, digits)} | {fmt(b, digits)} | {fmt(q, 2)} |")
    lines += [
        "",
        "| other ratios | value |",
        "| --- | ---: |",
        *(
            f"| {name} | {fmt(value, digits)} |"
            for name, value, digits in (
                (
                    "raw confluent-kafka consumer (records/s, the ceiling)",
                    w1["raw_consumer_rps"],
                    0,
                ),
                ("streamtable at_least_once / raw consumer", r["w1_streamtable_alos_over_raw"], 3),
                ("streamtable exactly_once_v2 / raw consumer", r["w1_streamtable_eos_over_raw"], 3),
                ("Kafka Streams at_least_once / raw consumer", r["w1_kstreams_alos_over_raw"], 3),
                (
                    f"streamtable at_least_once in {fmt(w1['streamtable_alos_processes'])} "
                    "processes (records/s)",
                    w1["streamtable_alos_processes_rps"],
                    0,
                ),
                (
                    "the same / raw consumer",
                    r["w1_streamtable_alos_processes_over_raw"],
                    3,
                ),
                (
                    "the same / Kafka Streams at_least_once (one process, one thread)",
                    r["w1_streamtable_alos_processes_over_kstreams"],
                    2,
                ),
                (
                    "streamtable exactly_once_v2 / at_least_once",
                    r["w1_streamtable_eos_over_alos"],
                    2,
                ),
                (
                    "Kafka Streams exactly_once_v2 / at_least_once",
                    r["w1_kstreams_eos_over_alos"],
                    2,
                ),
            )
        ),
        "",
        *extras_markdown(summary),
        "## Machine",
        "",
        f"{m['nproc']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB RAM, Linux {m['kernel']}, "
        f"Python {m['python']}, Java `{m['java']}`; broker: kafka-local "
        f"(Apache Kafka {m['kafka']}, one KRaft node) on the same machine unless "
        "`KAFKA_BOOTSTRAP_SERVERS` was set.",
        "",
        "## Settings",
        "",
        f"* Input: {d['records']:,} records on one compacted topic with {d['partitions']} "
        f"partitions (`min.compaction.lag.ms` = 7 days, so the cleaner leaves it alone during "
        f"the run): {d['positions']:,} positions over {d['clients']:,} clients, each opened "
        f"once, then updates {d['update_ratio']:.0%} / client moves {d['client_move_ratio']:.0%} "
        f"/ exchange moves {d['exchange_move_ratio']:.0%} / closes (tombstones) "
        f"{d['close_ratio']:.0%}; US venues {d['us_ratio']:.0%}; generator seed {d['seed']} "
        "(`bench/datagen.py`). The input is produced before any workload starts.",
        f"* Both implementations: commit interval {s['commit_interval_ms']['at_least_once']} ms "
        f"(at_least_once) / {s['commit_interval_ms']['exactly_once_v2']} ms (exactly_once_v2), "
        f"record cache {s['cache_max_bytes']:,} bytes, one processing thread, state on local "
        "disk under `.cache/bench-state/`. Kafka Streams runs `bench/reference` BenchApp with "
        "JVM defaults; streamtable runs `python -m bench.runner` (its own process).",
        "* **W1** (seed topology, table -> filter US -> group_by client -> reduce to a set of "
        "ids): from an empty state and a fresh application id. The clock starts when the "
        "process is spawned (interpreter/JVM start-up included) and stops when the group's "
        "(= application id's) committed offsets reach the end offsets of the input topic and "
        "of the repartition topic (under exactly_once_v2, end - 1 for the repartition topic: "
        "the final transaction marker takes an offset). Polled every 0.1 s. "
        "Records/s = input records / elapsed. The run with several streamtable processes starts "
        "them together (same application id, one state directory each; the input's partitions "
        "are shared by the consumer group) and is timed from the first spawn; its RSS is the "
        "largest process's, its CPU the sum.",
        "* **Raw consumer**: a confluent-kafka `Consumer` in its own process assigned to every "
        "partition from the beginning, `consume(num_messages=10000)` until the end offsets; "
        "clock from process spawn.",
        "* **W2** (restore): after the at_least_once W1 run is stopped (SIGTERM, clean close), "
        "its state directory is deleted and it is restarted with the same application id. "
        "Records/s = records restored / restore phase, which runs from the first sign of "
        "restoring (Kafka Streams: the first `RESTORE_START` line of its restore listener; "
        "streamtable: the runner sees the app's restorer become active, polled every 5 ms) to "
        "RUNNING (Kafka Streams: and every `RESTORED` line). Start-to-RUNNING (from spawn) is "
        "also shown (it includes process start-up and joining the group). W2 runs after all W1 "
        "runs, and only once the group has no members: Kafka Streams does not leave the group "
        "on close, so a restart right away would first wait out the old member's session "
        "timeout (45 s by default; BenchApp has no flag to change it). "
        "The implementations restore different "
        "records: streamtable rebuilds `positions-store` from the input topic itself (it uses "
        "the source topic as the table's changelog) plus the `us-holders` changelog; Kafka "
        "Streams (topology optimization off, as in BenchApp) restores the "
        "`positions-store-changelog` (already de-duplicated by its cache) and the `us-holders` "
        "changelog. Compare records/s, and read start-to-RUNNING with that in mind.",
        "* **CPU**: user + system CPU seconds of the app process over its whole W1 run "
        "(start-up and all threads; from `/proc/<pid>/stat`), and of the kafka-local broker "
        "during the same run (n/a when `KAFKA_BOOTSTRAP_SERVERS` is set). Less sensitive to "
        "other load on a shared machine than records/s. Kafka Streams writes more to the "
        "broker: with topology optimization off it keeps a `positions-store-changelog` (one "
        "record per input record, less what its cache de-duplicates), which streamtable does "
        "not need (its source table's changelog is the input topic).",
        "* **W4**: `VmHWM` (peak resident set) from `/proc/<pid>/status` of the app process "
        "when W1 is done, before it is stopped (the JVM's figure includes its default heap "
        "sizing).",
        "* **W3** (queries, `bench/queries.py`, once per `make bench`, not repeated): its own "
        f"compacted topic of {fmt(summary['w3']['scan_keys'])} keys (one record each, "
        f"{d['partitions']} partitions) read by a one-table topology (`positions-store`) in "
        "two instances, each its own process serving `create_query_app(app)` with uvicorn on "
        "127.0.0.1 and advertising it as `application_server`; measured once the group has "
        "committed the whole topic. Local get: `app.store(...).get(key)` in instance A's "
        f"process, {fmt(summary['w3']['local_gets'])} random keys A owns. Routed get: "
        f"{fmt(summary['w3']['routed_gets'])} sequential `GET /stores/positions-store/keys/"
        "{key}` (httpx, keep-alive) to A for keys B owns (A forwards each to B). Scan: "
        "`GET /stores/positions-store?limit=N` on A following `next_cursor` to the end "
        "(A merges its page with B's), the count checked against the keys produced; "
        "N = 10,000 (the largest page the server allows; `scan_100k_s`), then N = 1,000.",
        "* **W5** (digest, `bench/digest.py`, once per `make bench`): "
        f"`us_shareholders.demo.generate(clients={fmt(summary['w5']['clients'])}, "
        f"positions={fmt(summary['w5']['positions'])})` loaded into fresh topics; one "
        "service instance (`python -m us_shareholders.cli run`, its own process, "
        "exactly_once_v2, commit interval 200 ms) delivering over SMTP to an aiosmtpd sink "
        "(`us_shareholders.mailsink.SmtpSink`, in the bench process). Once `/readyz` answers "
        "200: `POST /digests/run`; jobs/s = jobs / time from the POST until a read_committed "
        "consumer has seen every job on `<app>-digests` (the expected count, clients holding "
        "a US position with an email and not unsubscribed, is checked against `/digests`); "
        "emails/s = emails / time from the POST until the sink has accepted every email. "
        "At this size jobs/s is bound by latency rather than throughput (each partition's "
        "digest starts on a once-a-second punctuator, then its jobs wait for the commit), so "
        "read it as a lower bound; emails/s is one SMTP session delivering one message at a "
        "time.",
        "",
    ]
    path.write_text("\n".join(lines))


def extras_markdown(summary: dict[str, Any]) -> list[str]:
    """The W3/W5 section: streamtable only, absolute figures (no Kafka Streams counterpart)."""
    w3, w5 = summary["w3"], summary["w5"]
    lines = [
        "W3 and W5 have no Kafka Streams reference: Kafka Streams has no built-in HTTP query "
        "server (interactive queries over the network are left to the application), and the "
        "digest service exists only on streamtable. They are absolute figures from the same "
        "run, one measurement each; read them as orders of magnitude.",
        "",
        "| workload (streamtable only) | value |",
        "| --- | ---: |",
    ]
    for name, entry in (("W3", w3), ("W5", w5)):
        if "skipped" in entry:
            lines.append(f"| {name} | skipped (`BENCH_SKIP`) |")
        elif "error" in entry:
            lines.append(f"| {name} | failed: {entry['error'][:200]} |")
        elif name == "W3":
            lines += [
                f"| W3 local get, p50 / p99 (ms) | {fmt(w3['local_get_p50_ms'], 3)} / "
                f"{fmt(w3['local_get_p99_ms'], 3)} |",
                f"| W3 routed get over HTTP (A -> B), p50 / p99 (ms) | "
                f"{fmt(w3['routed_get_p50_ms'], 2)} / {fmt(w3['routed_get_p99_ms'], 2)} |",
                f"| W3 full paginated scan over HTTP, {fmt(w3['scan_keys'])} keys, pages of "
                f"10,000 (s) | {fmt(w3['scan_100k_s'], 2)} |",
                f"| W3 the same scan, pages of 1,000 (s) | "
                f"{fmt((w3['scan_100k_s_by_page_limit'] or {}).get('1000'), 2)} |",
            ]
        else:
            lines += [
                f"| W5 digest jobs/s ({fmt(w5['jobs'])} jobs in {fmt(w5['jobs_s'], 2)} s) | "
                f"{fmt(w5['jobs_per_s'])} |",
                f"| W5 emails/s to the SMTP sink ({fmt(w5['emails'])} emails in "
                f"{fmt(w5['emails_s'], 2)} s) | {fmt(w5['emails_per_s'])} |",
            ]
    return [*lines, ""]


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    wall_start = time.monotonic()
    settings = Settings.from_env()
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    run_id = f"bench-{stamp.lower()}"
    logs = REPO / ".cache" / "bench-logs" / stamp
    logs.mkdir(parents=True, exist_ok=True)
    log(
        f"records={settings.data.records:,} repeats={settings.repeats} "
        f"skip={','.join(sorted(settings.skip)) or '-'}; child logs in {logs}"
    )
    classpath = ""
    if settings.runs("w1"):
        log("building the Kafka Streams reference (bench/reference/build.sh)")
        subprocess.run(["bash", str(REFERENCE / "build.sh")], check=True)
        target = REFERENCE / "target"
        classpath = f"{target / 'classes'}:{(target / 'classpath.txt').read_text().strip()}"
    mach = machine()
    runs: list[dict[str, Any]] = []
    extras: dict[str, dict[str, Any]] = {}
    with broker() as (bootstrap, broker_pid):
        offsets = Offsets(bootstrap)
        try:
            input_topic = f"{run_id}-positions"
            records = 0
            if settings.runs("w1"):
                create_topic(offsets.admin, input_topic, settings.data.partitions)
                log(f"producing {settings.data.records:,} records to {input_topic}")
                started = time.monotonic()
                records = produce(bootstrap, input_topic, settings.data)
                log(f"produced {records:,} records in {time.monotonic() - started:.1f}s")
            ctx = Ctx(
                settings=settings,
                bootstrap=bootstrap,
                offsets=offsets,
                run_id=run_id,
                input_topic=input_topic,
                records=records,
                logs=logs,
                kstreams=Impl("kstreams", classpath),
                broker_pid=broker_pid,
            )
            for rep in range(settings.repeats if settings.runs("w1") else 0):
                log(f"--- repeat {rep + 1}/{settings.repeats}")
                run: dict[str, Any] = {"raw": run_raw(ctx)}
                restarts: dict[str, Restart] = {}
                for label, impl, guarantee in (
                    ("st_alos", ctx.streamtable, "at_least_once"),
                    ("ks_alos", ctx.kstreams, "at_least_once"),
                    ("st_eos", ctx.streamtable, "exactly_once_v2"),
                    ("ks_eos", ctx.kstreams, "exactly_once_v2"),
                ):
                    run[label], restarts[label] = run_w1(
                        ctx, impl, guarantee, f"{label}-r{rep + 1}"
                    )
                if settings.processes > 1:  # the same, one process per core (scaling out)
                    run["st_alos_procs"], _ = run_w1(
                        ctx,
                        ctx.streamtable,
                        "at_least_once",
                        f"st_alos_procs-r{rep + 1}",
                        settings.processes,
                    )
                # W2 last: by then the at_least_once runs' old group members are long gone.
                for label in ("st_alos", "ks_alos"):
                    if settings.runs("w2"):
                        run[label]["restore"] = run_w2(ctx, restarts[label])
                runs.append(run)
            # W3 and W5 once (streamtable only, no ratio to take): after the rest, on their
            # own topics, so they change nothing W1/W2 measure.
            if settings.runs("w3"):
                extras["w3"] = guarded("W3", lambda: run_w3(ctx))
            if settings.runs("w5"):
                extras["w5"] = guarded("W5", lambda: run_w5(ctx))
        finally:
            log("deleting this run's topics")
            with suppress(Exception):
                delete_run_topics(offsets, run_id)
            offsets.close()
            for path in STATE_ROOT.glob(f"{run_id}-*"):
                shutil.rmtree(path, ignore_errors=True)
    summary = summarize(settings, runs, mach, extras)
    wall_s = time.monotonic() - wall_start
    summary["generated_at"] = stamp
    summary["wall_time_s"] = round(wall_s, 1)
    summary["runs"] = runs
    summary["extras"] = extras
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=2) + "\n"
    (RESULTS / f"{stamp}.json").write_text(text)
    if settings.skip:  # a partial run: the full run's latest.json and RESULTS.md stand
        log(f"done in {wall_s:.0f}s: bench/results/{stamp}.json (partial: BENCH_SKIP)")
        return 0
    (RESULTS / "latest.json").write_text(text)
    write_markdown(summary, stamp, wall_s, BENCH / "RESULTS.md")
    log(f"done in {wall_s:.0f}s: bench/results/{stamp}.json, bench/RESULTS.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())

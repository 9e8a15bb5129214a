"""``us-shareholders demo`` (``make demo``): the whole service on this machine, in minutes.

Starts kafka-local and an SMTP sink (aiosmtpd writing ``.cache/demo/mail/*.eml``), creates the
topics, loads the seed's five positions plus generated clients and positions (US and non-US
venues, updates and closes), starts two instances, waits until both are ready, runs this week's
digest, waits for the emails, prints a summary, and stops everything (``--keep-running`` keeps
it up until Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx
from confluent_kafka import Producer
from rich.console import Console
from rich.progress import Progress

from streamtable.runtime import kafka_logger
from us_shareholders.config import KAFKA_LOGGER, ServiceSettings
from us_shareholders.kafka_topics import create_topics, service_topics
from us_shareholders.mailsink import SmtpSink
from us_shareholders.venues import VenueMatcher

ROOT = Path(__file__).resolve().parents[3]  # the repository: service/src/us_shareholders/demo.py
DEMO_DIR = ROOT / ".cache" / "demo"
KAFKA_PORT = 19592
HTTP_PORTS = (18081, 18082)
PARTITIONS = 4
T = TypeVar("T")

SEED_POSITIONS = [
    ("1", "client1", "AAPL", "NASDAQ"),
    ("2", "client1", "VOD", "LON"),
    ("3", "client1", "FB", "NASDAQ"),
    ("4", "client2", "AAPL", "NASDAQ"),
    ("5", "client3", "VOD", "LON"),
]
US_VENUES = ["NASDAQ", "NYSE", "XNAS", "NYSE Arca", "IEX", "BATS"]
OTHER_VENUES = ["LON", "XETRA", "TSE", "EURONEXT"]
TICKERS = {"AAPL": "Apple Inc.", "MSFT": "Microsoft Corp.", "FB": "Meta Platforms",
           "IBM": "IBM", "VOD": "Vodafone", "SAP": "SAP SE", "BP": "BP plc"}  # fmt: skip


def generate(clients: int, positions: int, seed: int = 42) -> dict[str, list[tuple[str, Any]]]:
    """Records per topic: clients, instruments and positions with updates and closes."""
    rng = random.Random(seed)
    client_ids = ["client1", "client2", "client3"] + [f"c{i:04d}" for i in range(clients - 3)]
    client_records: list[tuple[str, Any]] = []
    for i, cid in enumerate(client_ids):
        email = None if i % 50 == 49 else f"{cid}@example.com"
        client_records.append(
            (cid, {"name": f"Client {cid}", "email": email, "unsubscribed": i % 40 == 39})
        )
    records: list[tuple[str, Any]] = [
        (pid, {"id": pid, "client": c, "ticker": t, "exchange": x, "amount": 100})
        for pid, c, t, x in SEED_POSITIONS
    ]
    for n in range(positions):
        pid = f"p{n:05d}"
        venue = rng.choice(US_VENUES if rng.random() < 0.5 else OTHER_VENUES)
        ticker = rng.choice(list(TICKERS))
        client = rng.choice(client_ids[3:])
        records.append((pid, {"id": pid, "client": client, "ticker": ticker,
                              "exchange": venue, "amount": rng.randint(1, 500)}))  # fmt: skip
    for _ in range(positions // 5):  # updates, moves and closes
        pid = f"p{rng.randrange(positions):05d}"
        if rng.random() < 0.3:
            records.append((pid, None))
        else:
            records.append((pid, {"id": pid, "client": rng.choice(client_ids[3:]),
                                  "ticker": rng.choice(list(TICKERS)),
                                  "exchange": rng.choice(US_VENUES + OTHER_VENUES),
                                  "amount": rng.randint(1, 500)}))  # fmt: skip
    instruments = [(t, {"name": name}) for t, name in TICKERS.items()]
    return {"positions": records, "clients": client_records, "instruments": instruments}


def expected_emails(data: dict[str, list[tuple[str, Any]]], venues: VenueMatcher) -> int:
    table: dict[str, Any] = {}
    for pid, pos in data["positions"]:
        if pos is None:
            table.pop(pid, None)
        else:
            table[pid] = pos
    holders = {p["client"] for p in table.values() if venues.is_us(p["exchange"])}
    clients = dict(data["clients"])
    return sum(1 for c in holders if clients[c]["email"] and not clients[c]["unsubscribed"])


def wait(what: str, check: Callable[[], T | None], timeout_s: float) -> T:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(0.5)


@contextmanager
def kafka_local(console: Console) -> Iterator[str]:
    env = {**os.environ, "KAFKA_LOCAL_PORT": str(KAFKA_PORT),
           "KAFKA_LOCAL_HOME": str(DEMO_DIR / "kafka")}  # fmt: skip
    script = ROOT / "tools" / "kafka" / "kafka-local"
    console.print("[bold]1/6[/] starting Apache Kafka (kafka-local)...")
    done = subprocess.run(
        [str(script), "start"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka-local failed:\n{done.stderr}")
    bootstrap = done.stdout.strip().splitlines()[-1].removeprefix("bootstrap=")
    try:
        yield bootstrap
    finally:
        subprocess.run([str(script), "stop"], env=env, capture_output=True, check=False)


def _ready(port: int) -> bool:
    reply = _get(f"http://127.0.0.1:{port}/readyz")
    return reply is not None and reply.status_code == 200


def _get(url: str) -> httpx.Response | None:
    try:
        return httpx.get(url, timeout=5)
    except httpx.HTTPError:
        return None


def run_demo(settings: ServiceSettings, args: argparse.Namespace) -> int:
    console = Console(stderr=True)
    shutil.rmtree(DEMO_DIR / "state", ignore_errors=True)
    shutil.rmtree(DEMO_DIR / "mail", ignore_errors=True)
    (DEMO_DIR / "logs").mkdir(parents=True, exist_ok=True)
    app_id = f"ush-demo-{int(time.time())}"
    with kafka_local(console) as bootstrap, SmtpSink(DEMO_DIR / "mail") as sink:
        console.print(f"[bold]2/6[/] SMTP sink on 127.0.0.1:{sink.port} -> {DEMO_DIR / 'mail'}")
        kafka = {"bootstrap.servers": bootstrap, "logger": kafka_logger(KAFKA_LOGGER)}
        topics = service_topics("share-holders", "clients", "instruments", app_id, PARTITIONS)
        create_topics(kafka, topics)
        data = generate(args.clients, args.positions)
        expected = expected_emails(data, VenueMatcher())
        total = _load(console, kafka, data)
        console.print(f"[bold]3/6[/] loaded {total} records ({args.clients} clients, "
                      f"{args.positions} positions + updates and closes)")  # fmt: skip
        procs = _start_instances(bootstrap, app_id, sink.port)
        try:
            console.print("[bold]4/6[/] starting 2 instances, waiting until ready...")
            for port in HTTP_PORTS:
                wait(f"instance :{port} ready", partial(_ready, port), 180)
            _digest_and_deliver(console, sink, expected)
            summary(console, sink)
            if args.keep_running:
                console.print("running; Ctrl-C to stop")
                signal.sigwait({signal.SIGINT, signal.SIGTERM})
        finally:
            _stop(procs)
    return 0


def _load(console: Console, kafka: dict[str, Any], data: dict[str, list[tuple[str, Any]]]) -> int:
    """Produce the generated records to their topics; returns how many."""
    producer = Producer({**kafka, "partitioner": "murmur2_random", "linger.ms": 20})
    with Progress(console=console, transient=True) as progress:
        total = sum(len(v) for v in data.values())
        task = progress.add_task("[bold]3/6[/] loading topics", total=total)
        topic_of = {
            "positions": "share-holders",
            "clients": "clients",
            "instruments": "instruments",
        }
        for name, records in data.items():
            for key, value in records:
                payload = None if value is None else json.dumps(value).encode()
                producer.produce(topic_of[name], key=key.encode(), value=payload)
                producer.poll(0)
                progress.advance(task)
        producer.flush(60)
    del producer  # its connections close now, not when Kafka stops
    return total


def _start_instances(bootstrap: str, app_id: str, smtp_port: int) -> list[subprocess.Popen[bytes]]:
    """Two service instances (``us-shareholders run``), logging to ``.cache/demo/logs``."""
    env = {**os.environ, "USH_BOOTSTRAP_SERVERS": bootstrap, "USH_APPLICATION_ID": app_id,
           "USH_INSTRUMENTS_TOPIC": "instruments", "USH_SMTP_HOST": "127.0.0.1",
           "USH_SMTP_PORT": str(smtp_port), "USH_COMMIT_INTERVAL_MS": "200",
           "USH_MAIL_FROM": "US holdings <digest@demo.example>"}  # fmt: skip
    procs = []
    for i, port in enumerate(HTTP_PORTS):
        log = (DEMO_DIR / "logs" / f"instance-{i}.log").open("wb")
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "us_shareholders.cli", "run", "--http-port", str(port),
             "--state-dir", str(DEMO_DIR / "state" / f"instance-{i}")],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        ))  # fmt: skip
        log.close()
    return procs


def _digest_and_deliver(console: Console, sink: SmtpSink, expected: int) -> None:
    """Run this week's digest and wait until the sink holds ``expected`` emails."""
    console.print("[bold]5/6[/] running this week's digest (POST /digests/run)")
    httpx.post(f"http://127.0.0.1:{HTTP_PORTS[0]}/digests/run", timeout=30).raise_for_status()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("delivering emails", total=expected)

        def delivered() -> bool:
            count = len(sink.messages())
            progress.update(task, completed=count)
            return count >= expected

        wait(f"{expected} emails", delivered, 300)
    console.print(f"[bold]6/6[/] {len(sink.messages())} emails delivered")


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        proc.send_signal(signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


def summary(console: Console, sink: SmtpSink) -> None:
    for port in HTTP_PORTS:
        base = f"http://127.0.0.1:{port}"
        reply = _get(f"{base}/digests")
        parts = reply.json()["partitions"] if reply is not None and reply.status_code == 200 else []
        owned = sorted(p["partition"] for p in parts)
        jobs = sum(r.get("jobs", 0) for p in parts for r in p.get("runs", {}).values())
        console.print(f"instance {base}: partitions {owned}, {jobs} clients emailed")
    first = sink.messages()[0]
    console.rule("one email")
    console.print(first.get_body(("plain",)).get_content())  # type: ignore[union-attr]
    console.rule()
    console.print(f"query: curl http://127.0.0.1:{HTTP_PORTS[0]}/holders/client1\n"
                  f"       curl 'http://127.0.0.1:{HTTP_PORTS[1]}/holders?limit=5'"
                  "  (then &cursor=<its next_cursor>)\n"
                  f"       curl http://127.0.0.1:{HTTP_PORTS[0]}/digests\n"
                  f"mail:  {DEMO_DIR / 'mail'}")  # fmt: skip

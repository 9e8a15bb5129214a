"""One StreamsApp in its own process, for system tests: ``python -m tests.system.app_process``.

It runs until SIGTERM (through ``StreamsApp.run_until_signal``) and, on SIGUSR1, writes what
its local store holds to ``--dump`` (atomically) so a test can compare instances.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import streamtable as st
from streamtable.errors import StoreNotReady
from tests.support.positions import seed_topology


def count_topology(topic: str, output: str) -> st.Topology:
    builder = st.StreamsBuilder()
    (
        builder.stream(topic, key_serde=st.serde.STRING, value_serde=st.serde.JSON)
        .group_by_key()
        .count(store="counts")
        .to_stream()
        .to(output, value_serde=st.serde.JSON)
    )
    return builder.build()


def plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, frozenset | set) else value


def main() -> int:
    parser = argparse.ArgumentParser()
    for flag in ("--bootstrap", "--app-id", "--topic", "--state-dir", "--dump", "--store"):
        parser.add_argument(flag, required=True)
    parser.add_argument("--topology", choices=["seed", "count"], default="seed")
    parser.add_argument("--output", default="")
    parser.add_argument("--guarantee", default="at_least_once")
    parser.add_argument("--commit-interval-ms", type=int, default=500)
    parser.add_argument("--cache-max-bytes", type=int, default=10 * 1024 * 1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    topology = (
        seed_topology(args.topic)
        if args.topology == "seed"
        else count_topology(args.topic, args.output)
    )
    app = st.StreamsApp(
        topology,
        st.StreamsConfig(
            application_id=args.app_id,
            bootstrap_servers=args.bootstrap,
            state_dir=Path(args.state_dir),
            processing_guarantee=args.guarantee,
            commit_interval_ms=args.commit_interval_ms,
            cache_max_bytes=args.cache_max_bytes,
            session_timeout_ms=6000,
        ),
    )
    dump = Path(args.dump)

    def write_dump(*_: Any) -> None:
        report: dict[str, Any] = {"state": app.state.name, "restored": app.restored_records}
        try:
            report["store"] = {k: plain(v) for k, v in app.store(args.store).all()}
        except StoreNotReady:
            report["store"] = None
        tmp = dump.with_suffix(".tmp")
        tmp.write_text(json.dumps(report))
        os.replace(tmp, dump)

    signal.signal(signal.SIGUSR1, write_dump)
    dump.with_suffix(".ready").touch()  # the test may signal from now on
    return app.run_until_signal()


if __name__ == "__main__":
    sys.exit(main())

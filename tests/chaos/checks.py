"""The verdict of a chaos run: what must hold once the input stopped and the group committed."""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from confluent_kafka.admin import AdminClient

from streamtable.runtime.topics import dlq_topic
from streamtable.serde import SessionWindowedSerde, TimeWindowedSerde
from tests.chaos import sessions, windowed
from tests.chaos.cluster import Instance
from tests.chaos.kafka_io import partition_count, read_topic
from tests.chaos.topologies import TopologyKind
from tests.chaos.worker import plain

if TYPE_CHECKING:
    from tests.chaos.runner import SeedRun

MAX_LOG_LINE = 4096
_SHOWN = 8  # differing keys shown in a report


def coverage_problem(
    dumps: dict[str, dict[str, Any]], partitions: int, kind: TopologyKind
) -> str | None:
    """None when every instance is RUNNING and each result partition is active on exactly one."""
    not_running = {n: d["state"] for n, d in dumps.items() if d["state"] != "RUNNING"}
    if not_running:
        return f"instances not RUNNING: {not_running}"
    if kind.name == "global":
        return None  # no result store: the output topic is checked
    owners = Counter(p for d in dumps.values() for p in d["active"])
    if sorted(owners) != list(range(partitions)) or any(n != 1 for n in owners.values()):
        return f"result partitions owned: {dict(sorted(owners.items()))}"
    if any(d["store"] is None for d in dumps.values()):
        return "a store is not queryable yet"
    return None


def _json(value: Any) -> Any:
    return json.loads(json.dumps(value))


def verify(
    run: SeedRun, dumps: dict[str, dict[str, Any]], admin: AdminClient, details: dict[str, Any]
) -> list[str]:
    failures: list[str] = []
    kind = run.kind
    eos = run.plan.guarantee == "exactly_once_v2"
    if kind.oracle is None:
        return _verify_windowed(run, dumps, eos, details) + _check_dlq(run, eos, details)
    expected = _json(kind.oracle(run.produced.events))
    details["expected_keys"] = len(expected)
    union: dict[str, Any] = {}
    where: dict[str, str] = {}
    if kind.name != "global":
        twice = []
        for name, dump in sorted(dumps.items()):
            for key, value in (dump["store"] or {}).items():
                if key in union:
                    twice.append(f"{key} ({where[key]}, {name})")
                union[key] = value
                where[key] = name
        if twice:
            failures.append(f"{len(twice)} keys served by two instances: {twice[:_SHOWN]}")
        failures += _compare(expected, union, where, exact=eos or kind.exact_under_alos)
    if kind.output:
        failures += _check_output(run, expected, union, eos)
    if eos and kind.name != "global":
        failures += _check_changelog(run, union, kind.name == "count")
    failures += _check_dlq(run, eos, details)
    return failures


def _verify_windowed(
    run: SeedRun, dumps: dict[str, dict[str, Any]], eos: bool, details: dict[str, Any]
) -> list[str]:
    """The windowed kind: its stores, and under EOS its changelog (``windowed.py``)."""
    want = expected_windows(run)
    base = run.base_ms or 0
    times = {p: t - base for p, t in sorted(want.stream_time.items())}
    details["windows"] = {"live": len(want.live), "expired": len(want.expired),
                          "stream_time_after_base": times}  # fmt: skip
    failures = verify_window_stores(run, dumps, want, exact=eos)
    shape = run.plan.windows
    if shape is not None and (shape.emit_final or shape.suppress):
        closing = sessions.closed if shape.sessions else windowed.closed
        closed = closing(run.produced.events, shape, run.plan.partitions, run.base_ms or 0)
        details["windows"]["closed"] = len(closed)
        failures += windowed.compare_final(closed, _final_output(run), exact=eos)
    if eos:
        compare = sessions.compare_changelog if _sessions(run) else windowed.compare_changelog
        failures += compare(want, _window_changelog(run))
    return failures


def _sessions(run: SeedRun) -> bool:
    return run.plan.windows is not None and run.plan.windows.sessions


def expected_windows(run: SeedRun) -> windowed.Expected:
    """The windows (or the sessions kind's sessions) the stores must show, or must not."""
    shape, base = run.plan.windows, run.base_ms
    assert shape is not None  # drawn for this kind
    assert base is not None  # chosen for this kind
    oracle = sessions.expected if shape.sessions else windowed.expected
    return oracle(run.produced.events, shape, run.plan.partitions, base)


def verify_window_stores(
    run: SeedRun, dumps: dict[str, dict[str, Any]], want: windowed.Expected, exact: bool
) -> list[str]:
    stores = {name: dump["store"] or {} for name, dump in dumps.items()}
    return windowed.compare_stores(want, stores, exact)


def _final_output(run: SeedRun) -> list[tuple[str, Any]]:
    """The final results in the output topic, ``(key@start, count)`` (sessions:
    ``key@start..end``) in offset order per partition."""
    admin = AdminClient({"bootstrap.servers": run.broker.bootstrap})
    topic = run.topics["output"]
    eos = run.plan.guarantee == "exactly_once_v2"
    records = read_topic(run.broker.bootstrap, topic, partition_count(admin, topic), eos)
    return _windowed_records(run, records)


def _window_changelog(run: SeedRun) -> dict[str, list[Any]]:
    """The values of each window (or session) in the result store's changelog, read_committed,
    in order."""
    topic = f"{run.app_id}-result-changelog"
    admin = AdminClient({"bootstrap.servers": run.broker.bootstrap})
    history: dict[str, list[Any]] = {}
    records = read_topic(run.broker.bootstrap, topic, partition_count(admin, topic), True)
    for name, value in _windowed_records(run, records):
        history.setdefault(name, []).append(value)
    return history


def _windowed_records(run: SeedRun, records: list[Any]) -> list[tuple[str, Any]]:
    """``records`` keyed by the result store's windowed keys: ``(key@start, value)``, or
    ``(key@start..end, value)`` for sessions; a tombstone's value None."""
    spec = run.kind.build(run.topics, run.plan.windows).stores["result"]
    keys: TimeWindowedSerde | SessionWindowedSerde = SessionWindowedSerde(spec.key_serde)
    if not _sessions(run):
        assert spec.window_size_ms is not None  # a window store's spec has it
        keys = TimeWindowedSerde(spec.key_serde, spec.window_size_ms)
    out = []
    for r in records:
        assert r.key is not None
        w = keys.deserialize(r.key)
        value = None if r.value is None else spec.value_serde.deserialize(r.value)
        name = (
            sessions.session_key(w.key, w.window.start_ms, w.window.end_ms)
            if _sessions(run)
            else windowed.window_key(w.key, w.window.start_ms)
        )
        out.append((name, value))
    return out


def _compare(
    expected: dict[str, Any], actual: dict[str, Any], where: dict[str, str], exact: bool
) -> list[str]:
    diffs = []
    for key in sorted(set(expected) | set(actual)):
        want, got = expected.get(key), actual.get(key)
        bad = want != got if exact else (got is None or want is None or got < want)
        if bad:
            diffs.append(f"{key}: expected {want!r}, got {got!r} on {where.get(key, '-')}")
    if not diffs:
        return []
    how = "differ from" if exact else "fall short of"
    return [
        f"store: {len(diffs)} of {len(expected)} keys {how} the oracle; first: "
        + "; ".join(diffs[:_SHOWN])
    ]


def _check_output(
    run: SeedRun, expected: dict[str, Any], store: dict[str, Any], eos: bool
) -> list[str]:
    admin = AdminClient({"bootstrap.servers": run.broker.bootstrap})
    topic = run.topics["output"]
    records = read_topic(run.broker.bootstrap, topic, partition_count(admin, topic), eos)
    failures: list[str] = []
    if run.kind.name == "count":
        seen: dict[str, list[int]] = {}
        for r in records:
            assert r.key is not None
            assert r.value is not None
            seen.setdefault(r.key.decode(), []).append(json.loads(r.value))
        for key, values in seen.items():
            if eos and any(b <= a for a, b in pairwise(values)):
                failures.append(
                    f"output: counts of {key} not strictly increasing under EOS: {values[-10:]}"
                )
                break
        last = {k: v[-1] for k, v in seen.items()}
        if last != store:
            bad = [k for k in sorted(set(last) | set(store)) if last.get(k) != store.get(k)]
            failures.append(
                f"output: last count differs from the store for {len(bad)} keys: {bad[:_SHOWN]}"
            )
        return failures
    # global: every input record's result once (EOS) or at least once (ALOS), nothing else.
    got: Counter[str] = Counter()
    unexpected = []
    for r in records:
        assert r.key is not None
        assert r.value is not None
        value = json.loads(r.value)
        seq = str(value[0])
        if expected.get(seq) != [r.key.decode(), value]:
            unexpected.append(seq)
        got[seq] += 1
    missing = [s for s in expected if got[s] == 0]
    repeated = [s for s, n in got.items() if n > 1]
    if missing:
        failures.append(
            f"output: {len(missing)} of {len(expected)} results missing, e.g. {missing[:_SHOWN]}"
        )
    if unexpected:
        failures.append(
            f"output: {len(unexpected)} results not implied by the input: {unexpected[:_SHOWN]}"
        )
    if eos and repeated:
        failures.append(
            f"output: {len(repeated)} results repeated under EOS, e.g. {repeated[:_SHOWN]}"
        )
    return failures


def _check_changelog(run: SeedRun, store: dict[str, Any], increasing: bool) -> list[str]:
    """Under EOS the result changelog, read_committed, ends at the store's content per key."""
    topology = run.kind.build(run.topics, run.plan.windows)
    spec = topology.stores["result"]
    topic = f"{run.app_id}-result-changelog"
    admin = AdminClient({"bootstrap.servers": run.broker.bootstrap})
    records = read_topic(run.broker.bootstrap, topic, partition_count(admin, topic), True)
    last: dict[str, Any] = {}
    history: dict[str, list[Any]] = {}
    for r in records:
        assert r.key is not None
        key = str(spec.key_serde.deserialize(r.key))
        value = None if r.value is None else _json(plain(spec.value_serde.deserialize(r.value)))
        last[key] = value
        history.setdefault(key, []).append(value)
    final = {k: v for k, v in last.items() if v is not None}
    failures = []
    if final != store:
        bad = [k for k in sorted(set(final) | set(store)) if final.get(k) != store.get(k)]
        failures.append(
            f"changelog (read_committed) ends off the store for {len(bad)} keys: {bad[:_SHOWN]}"
        )
    if increasing:
        for key, values in history.items():
            if any(b is None or a is None or b <= a for a, b in pairwise(values)):
                failures.append(
                    f"changelog: counts of {key} not strictly increasing: {values[-10:]}"
                )
                break
    return failures


def _check_dlq(run: SeedRun, eos: bool, details: dict[str, Any]) -> list[str]:
    topic = dlq_topic(run.app_id)
    admin = AdminClient({"bootstrap.servers": run.broker.bootstrap})
    count = partition_count(admin, topic)
    records = read_topic(run.broker.bootstrap, topic, count, eos) if count else []
    seen: Counter[tuple[str, int, int]] = Counter()
    no_reason = 0
    for r in records:
        h = r.headers
        try:
            coords = (h["x-topic"].decode(), int(h["x-partition"]), int(h["x-offset"]))
        except (KeyError, ValueError):
            continue  # a change that failed at flush time carries its processor, not a record
        seen[coords] += 1
        if not h.get("x-error"):
            no_reason += 1
    want = run.produced.malformed
    details["dlq"] = {"records": len(records), "malformed_produced": len(want)}
    failures = []
    missing = [f"{c} {want[c]}" for c in want if c not in seen]
    extra = [c for c in seen if c not in want]
    repeated = [c for c, n in seen.items() if n > 1]
    if missing:
        failures.append(
            f"dlq: {len(missing)} of {len(want)} malformed records missing: {missing[:_SHOWN]}"
        )
    if extra:
        failures.append(f"dlq: {len(extra)} valid records sent to the DLQ: {extra[:_SHOWN]}")
    if eos and repeated:
        failures.append(
            f"dlq: {len(repeated)} malformed records there twice under EOS: {repeated[:_SHOWN]}"
        )
    if no_reason:
        failures.append(f"dlq: {no_reason} records without an x-error reason")
    return failures


def verify_logs(instances: list[Instance], marker: str, details: dict[str, Any]) -> list[str]:
    """No log line longer than MAX_LOG_LINE; no record value (the marker) in any line."""
    failures = []
    errors: dict[str, int] = {}
    for instance in instances:
        if not instance.log_path.exists():
            continue
        long_lines = leaks = 0
        for line in instance.log_path.read_text(errors="replace").splitlines():
            if len(line) > MAX_LOG_LINE:
                long_lines += 1
            if marker in line:
                leaks += 1
            if " ERROR " in line or "Traceback" in line:
                errors[instance.name] = errors.get(instance.name, 0) + 1
        if long_lines:
            failures.append(
                f"logs: {instance.name} has {long_lines} lines over {MAX_LOG_LINE} chars"
            )
        if leaks:
            failures.append(f"logs: {instance.name} echoes record values in {leaks} lines")
    details["error_lines"] = errors
    return failures


_MOVE = re.compile(r"^(\S+ \S+) .*task (\S+) running")


def task_moves(instances: list[Instance]) -> list[str]:
    """When each instance started running which task (from its log), in time order."""
    moves = []
    for instance in instances:
        if not instance.log_path.exists():
            continue
        for line in instance.log_path.read_text(errors="replace").splitlines():
            m = _MOVE.match(line)
            if m:
                moves.append(f"{m.group(1)} {instance.name} runs {m.group(2)}")
    return sorted(moves)

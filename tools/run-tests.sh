#!/usr/bin/env bash
# `make test`: lint, type check, then the whole pytest suite against a real Kafka broker.
#
# The schema registry (for the registry serdes' tests) is SCHEMA_REGISTRY_URL when set. Otherwise
# tools/registry/registry-local starts one in the background first, so that its JVM boots while
# ruff and mypy run; it is stopped again on exit unless it was already running before.
#
# The broker is KAFKA_BOOTSTRAP_SERVERS when set. Otherwise tools/kafka/kafka-local provides one
# (port KAFKA_LOCAL_PORT, default 9092): started here and stopped again on exit - on failure and
# Ctrl-C too - unless it was already running before, in which case it is left running.
#
# Extra pytest arguments: PYTEST_ARGS="-k smoke -x" make test
# The exit code is the first failing step's, or pytest's.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.." && pwd)"
cd "$REPO_DIR"
BIN=.venv/bin
KAFKA_LOCAL=tools/kafka/kafka-local
REGISTRY_LOCAL=tools/registry/registry-local

step() { echo "==> $*" >&2; }

started_kafka=0
started_registry=0
registry_job=""
registry_out=""
stop_services() {
    if [[ -n "$registry_job" ]]; then
        wait "$registry_job" 2>/dev/null || true # a start still under way finishes first
    fi
    if ((started_registry)); then
        step "stopping the schema registry started for this run"
        "$REGISTRY_LOCAL" stop >&2 || true
    fi
    [[ -z "$registry_out" ]] || rm -f "$registry_out"
    if ((started_kafka)); then
        step "stopping the broker started for this run"
        "$KAFKA_LOCAL" stop >&2 || true
    fi
}
trap stop_services EXIT
# Turn signals into an ordinary exit so that the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ -z "${SCHEMA_REGISTRY_URL:-}" ]]; then
    if "$REGISTRY_LOCAL" status >/dev/null; then
        step "using the already running registry-local (left running afterwards)"
    else
        started_registry=1
        step "starting registry-local in the background"
    fi
    registry_out="$(mktemp)"
    "$REGISTRY_LOCAL" start >"$registry_out" 2>&1 &
    registry_job=$!
fi

step "ruff check"
"$BIN/ruff" check .
step "ruff format --check"
"$BIN/ruff" format --check .
step "mypy"
"$BIN/mypy"

if [[ -z "${KAFKA_BOOTSTRAP_SERVERS:-}" ]]; then
    if "$KAFKA_LOCAL" status >/dev/null; then
        step "using the already running kafka-local broker (left running afterwards)"
    else
        # Set before starting: should start fail half-way or be interrupted, stop cleans up.
        started_kafka=1
        step "starting kafka-local"
    fi
    bootstrap_line="$("$KAFKA_LOCAL" start | tail -n 1)"
    [[ "$bootstrap_line" == bootstrap=* ]] || {
        echo "run-tests: unexpected output from kafka-local start: $bootstrap_line" >&2
        exit 1
    }
    export KAFKA_BOOTSTRAP_SERVERS="${bootstrap_line#bootstrap=}"
fi
if [[ -n "$registry_job" ]]; then
    registry_status=0
    wait "$registry_job" || registry_status=$?
    registry_job=""
    url_line="$(tail -n 1 "$registry_out")"
    if ((registry_status != 0)) || [[ "$url_line" != url=* ]]; then
        cat "$registry_out" >&2
        echo "run-tests: registry-local start failed (exit $registry_status)" >&2
        exit 1
    fi
    export SCHEMA_REGISTRY_URL="${url_line#url=}"
fi
step "pytest against $KAFKA_BOOTSTRAP_SERVERS (schema registry $SCHEMA_REGISTRY_URL)"

read -r -a extra_args <<<"${PYTEST_ARGS:-}"
set +e
"$BIN/pytest" -q "${extra_args[@]}"
status=$?
set -e
exit "$status"

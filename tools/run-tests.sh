#!/usr/bin/env bash
# `make test`: lint, type check, then the whole pytest suite against a real Kafka broker.
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

step() { echo "==> $*" >&2; }

step "ruff check"
"$BIN/ruff" check .
step "ruff format --check"
"$BIN/ruff" format --check .
step "mypy"
"$BIN/mypy"

started_kafka=0
stop_kafka() {
    if ((started_kafka)); then
        step "stopping the broker started for this run"
        "$KAFKA_LOCAL" stop >&2 || true
    fi
}
trap stop_kafka EXIT
# Turn signals into an ordinary exit so that the EXIT trap runs.
trap 'exit 130' INT
trap 'exit 143' TERM

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
step "pytest against $KAFKA_BOOTSTRAP_SERVERS"

read -r -a extra_args <<<"${PYTEST_ARGS:-}"
set +e
"$BIN/pytest" -q "${extra_args[@]}"
status=$?
set -e
exit "$status"

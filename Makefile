# The project's entry points. `make test` is what CI runs (.ci/run).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
KAFKA_LOCAL := tools/kafka/kafka-local

.PHONY: install lint typecheck test test-unit chaos demo bench kafka-start kafka-stop clean

install: $(STAMP)

# Both distributions editable: the library (with its extras and the dev tools) and the service.
$(STAMP): pyproject.toml service/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip==26.3"
	$(PY) -m pip install --quiet -e ".[query,metrics,dev]" -e ./service
	touch $(STAMP)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy

# Runs lint, mypy and the whole suite against a real broker: the one started here by kafka-local
# (stopped again afterwards, also on failure) unless KAFKA_BOOTSTRAP_SERVERS points at a cluster.
test: install
	@bash tools/run-tests.sh

test-unit: install
	$(VENV)/bin/pytest -m unit -q

# The fault harness (tests/chaos): SEEDS random seeds of real app processes on a broker of its own
# (port CHAOS_KAFKA_PORT, default 19392), each with a schedule of faults and an oracle; prints
# "chaos: K/N seeds correct". The default takes about 20 minutes on a 2-core machine.
SEEDS ?= 18
chaos: install
	$(PY) -m tests.chaos --seeds $(SEEDS)

# Benchmarks (bench/run.py): streamtable vs. Kafka Streams vs. a raw consumer on a kafka-local broker
# of its own (port BENCH_KAFKA_PORT, default 19192), unless KAFKA_BOOTSTRAP_SERVERS is set. Writes
# bench/results/<UTC timestamp>.json, bench/results/latest.json and bench/RESULTS.md.
# BENCH_RECORDS (default 1000000) and BENCH_REPEATS (default 1) size it;
# BENCH_SKIP=w1,w2,w3,w5,w6,w7,latency,peers leaves workloads out (a partial run writes only its
# own results JSON); BENCH_PEERS picks the Python peers (quixstreams,bytewax,pathway,faust; each
# in a virtualenv under .cache/bench-venvs). BENCH_LATENCY_* size the latency part (bench/run.py).
bench: install
	$(PY) -m bench.run

# The whole service on this machine: kafka-local, an SMTP sink, two instances, this week's digest.
demo: install
	$(VENV)/bin/us-shareholders demo

kafka-start:
	$(KAFKA_LOCAL) start

kafka-stop:
	$(KAFKA_LOCAL) stop

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# make run: serve on http://127.0.0.1:$(PORT). make test: make lint, then the whole suite.
# make test-fast: the unit tier only (tests/unit: no Redis, no gunicorn; seconds). make bench: the benchmark.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2
STACK_REDIS ?= single
STACK_PROMETHEUS ?=
export PORT WORKERS STACK_REDIS STACK_PROMETHEUS

.PHONY: run stack test test-fast lint bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt -c constraints.txt
	@touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt -c constraints.txt
	@touch $@ $(VENV)/.runtime

run: $(VENV)/.runtime
	@scripts/run.sh

# The production topology without Docker: redis + two gunicorn instances + nginx on $(PORT).
# STACK_REDIS=sentinel: a primary, two replicas and three sentinels instead of one redis.
# STACK_REDIS=cluster: a Redis Cluster of three primaries and three replicas instead.
# STACK_PROMETHEUS=1: also Prometheus (Debian's package) scraping both instances' metrics.
stack: $(VENV)/.runtime
	@$(BIN)/python -m deploy.stack

# make lint first: a tree ruff would reformat, or a lint error, fails the tests too.
# Every tier: tests/unit, tests/live (real Redis, gunicorn), tests/stack (nginx, make run/stack).
test: lint
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The unit tier alone, while editing: fakeredis or no Redis at all, nothing started.
test-fast: $(VENV)/.dev
	$(BIN)/python -m pytest tests/unit $(PYTEST_ARGS)

bench: $(VENV)/.dev
	$(BIN)/python -m bench.run $(BENCH_ARGS)

lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) var .pytest_cache

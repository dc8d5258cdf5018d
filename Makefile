# The README's commands. Each sets up what it needs on a fresh machine.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-unit test-integration test-e2e lint bench soak system-deps clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

system-deps:
	bash scripts/system-deps.sh

# axe-core for the accessibility checks in the browser tests (pinned in package-lock.json)
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --ignore-scripts
	touch $@

## Build a demo campaign, render everything and serve it on http://127.0.0.1:5000
demo: system-deps $(STAMP)
	$(BIN)/kindly demo

## The whole suite: unit, integration (PostgreSQL, Redis, S3 endpoint) and Chromium end-to-end
test: system-deps $(STAMP) node_modules/.installed lint
	$(BIN)/pytest -p no:cacheprovider tests

# under a minute, nothing running needed: every test that needs a service or Chromium is marked
# (tests/conftest.py), and so is real slow work (`slow`: video encodes, kindly as a process);
# two processes (pytest-xdist), without the API-fuzzing plugins only integration tests use
test-unit: $(STAMP)
	$(BIN)/pytest -p no:cacheprovider -p no:schemathesis -p no:hypothesispytest -n 2 \
		-m "not integration and not e2e and not slow" tests/unit

test-integration: system-deps $(STAMP)
	$(BIN)/pytest tests/integration

test-e2e: system-deps $(STAMP) node_modules/.installed
	$(BIN)/pytest tests/e2e

lint: $(STAMP)
	$(BIN)/ruff check kindly renderer web workers tests bench
	$(BIN)/ruff format --check kindly renderer web workers tests bench
	$(BIN)/lint-imports

bench: system-deps $(STAMP)
	$(BIN)/python -m bench

## Minutes of mixed traffic at about 70 % of the measured capacity while a drill kills a web
## worker, restarts Redis with and without its append-only file and stops PostgreSQL; checks
## that every answered hit and payment is stored once, no 500, flat memory (not in `make test`;
## services of its own on loopback; e.g. `make soak SOAK_SECONDS=900`)
SOAK_SECONDS ?= 300
soak: system-deps $(STAMP)
	KINDLY_SOAK_SECONDS=$(SOAK_SECONDS) $(BIN)/python -m bench.soak --write

clean:
	rm -rf $(VENV) var .pytest_cache

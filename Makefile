# The two commands that do everything on a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test install migrate clean bench-live

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

serve: $(STAMP)
	$(BIN)/coco serve

migrate: $(STAMP)
	$(BIN)/coco migrate

test: $(STAMP)
	$(BIN)/python -m pytest

# Commit-to-receipt latency of live events for 1, 100 and 1,000 subscribers (a benchmark, not a test).
bench-live: $(STAMP)
	$(BIN)/python bench/live_latency.py

clean:
	rm -rf $(VENV) .pytest_cache

# One command each: `make up` runs rtplot, `make check` lints and tests it.
# Both set up .venv (and the pinned JS test client) on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up format lint test test-fast check clean

$(STAMP): pyproject.toml constraints.txt package.json package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

up: $(STAMP)
	$(BIN)/rtplot up

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(STAMP)
	$(BIN)/pytest

# Unit and in-process tests only: no service processes, under a minute.
test-fast: $(STAMP)
	$(BIN)/pytest -m "not e2e"

check: lint test

clean:
	rm -rf $(VENV) node_modules test-artifacts .mypy_cache .ruff_cache .pytest_cache

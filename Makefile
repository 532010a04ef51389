# One command each: `make up` runs rtplot, `make check` lints and tests it.
# Each first installs what it needs and this machine lacks: system packages
# (scripts/system-packages.txt, with apt-get; it says what to install where it cannot),
# then .venv, then the pinned JS (the test client, the benchmarks' reference Socket.IO server).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := node_modules/.package-lock.json  # npm writes it on every install
SYSTEM_PACKAGES := $(PYTHON) scripts/system_packages.py
# Debian keeps haproxy, dockerd and debootstrap in /usr/sbin, outside a user's PATH.
export PATH := $(PATH):/usr/sbin:/sbin

.PHONY: install up format lint test test-fast check clean

$(STAMP): pyproject.toml constraints.txt
	@$(SYSTEM_PACKAGES) up
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

$(JS_STAMP): package.json package-lock.json
	@$(SYSTEM_PACKAGES) check
	npm ci --no-audit --no-fund --loglevel=error
	touch $(JS_STAMP)

install: $(STAMP) $(JS_STAMP)

up: $(STAMP)
	@$(SYSTEM_PACKAGES) up
	$(BIN)/rtplot up

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The real `docker compose up` test (tests/test_compose_docker.py) spends most of its 2 to
# 4 minutes waiting on Docker, so it runs beside the rest; its output follows theirs. A
# shell starts a background command with Ctrl-C ignored: BESIDE gives it back, so that
# Ctrl-C stops that test too and it still stops its Docker engine on the way out.
DOCKER_TEST := tests/test_compose_docker.py
DOCKER_LOG := test-artifacts/logs/docker-test.txt
BESIDE := $(BIN)/python -c "import signal, sys, pytest; \
	signal.signal(signal.SIGINT, signal.default_int_handler); sys.exit(pytest.main(sys.argv[1:]))"

test: $(STAMP) $(JS_STAMP)
	@$(SYSTEM_PACKAGES) up check
	@mkdir -p $(dir $(DOCKER_LOG))
	@$(BESIDE) $(DOCKER_TEST) > $(DOCKER_LOG) 2>&1 & docker=$$!; \
	echo "$(BIN)/pytest --ignore=$(DOCKER_TEST)   (and $(DOCKER_TEST) beside it)"; \
	$(BIN)/pytest --ignore=$(DOCKER_TEST); rest=$$?; \
	wait $$docker; docker=$$?; \
	echo; echo "$(DOCKER_TEST) (run beside the rest):"; cat $(DOCKER_LOG); \
	[ $$rest -eq 0 ] && [ $$docker -eq 0 ]

# Unit and in-process tests only: no service processes, under a minute.
test-fast: $(STAMP)
	@$(SYSTEM_PACKAGES) up
	$(BIN)/pytest -m "not e2e"

check: lint test

clean:
	rm -rf $(VENV) node_modules test-artifacts .mypy_cache .ruff_cache .pytest_cache

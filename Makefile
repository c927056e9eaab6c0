# Two commands matter: `make run` (the whole system, locally) and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: install run test lint types unit integration chaos bench clean

# Two distributions: the client (./client: odoo_gateway_client, odoo_gateway_wire, gwctl)
# and the server, which depends on it; pip takes the local client for that dependency.
$(VENV)/.installed: pyproject.toml client/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ./client -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(PY) deploy/run_local.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

types: install
	$(VENV)/bin/mypy

unit: install
	$(PY) -m pytest tests/unit

integration: install
	$(PY) -m pytest tests/integration

# The test command CI runs: lint, types, then every test (unit, integration, browser).
test: lint types
	$(PY) -m pytest

# The full chaos profile: 20,000 tasks under faults; prints the table, writes JSON.
chaos: install
	$(PY) -m tests.chaos --profile full

# Figures for the README: the five accept-path figures in one table (accept ratio, idle
# sockets, fan-out, resume storm, end-to-end overhead), then hot versus cold records.
bench: install
	@command -v wrk >/dev/null || { echo "installing wrk from Debian's packages"; \
	  (apt-get install -y -qq wrk || sudo apt-get install -y -qq wrk) >/dev/null; }
	$(PY) -m tests.bench $(BENCH_ARGS)
	$(PY) -m tests.bench.bench_order

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache

# The two commands of the README are the contract: `make demo` and `make test`.
# Both start from a bare machine with Python 3.11 and make: they create .venv and
# install the project with our own constraints file (constraints.txt), the pinned
# set of versions CI is tested with (Airflow's documented install path).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA ?= data
DEMO_HOUSEHOLDS ?= 20000
export PAYMENTS_DATA_DIR := $(abspath $(DATA))

.PHONY: demo test lint install constraints bench national clean help

help:
	@echo "make demo         set up, generate a sample and run the batch on embedded defaults"
	@echo "make test         set up and run the whole test suite (lint + types + pytest)"
	@echo "make lint         ruff and mypy only"
	@echo "make bench        national-scale figures (prints a table; never asserts timings)"
	@echo "make constraints  refresh constraints.txt from a fresh, unconstrained install"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/pip check
	@touch $(STAMP)

install: $(STAMP)

# The demo plays every role: an operator runs the batch, finance (another user:
# four eyes) approves it, then the files go to the (local) bank folder.
demo: $(STAMP)
	$(BIN)/payments sample --households $(DEMO_HOUSEHOLDS) --defects 0.01
	$(BIN)/payments run --triggered-by operator-demo
	$(BIN)/payments approve $$(cat $(PAYMENTS_DATA_DIR)/runs/LATEST) --by finance-demo
	$(BIN)/payments send $$(cat $(PAYMENTS_DATA_DIR)/runs/LATEST)
	$(BIN)/payments verify $(PAYMENTS_DATA_DIR)/runs/$$(cat $(PAYMENTS_DATA_DIR)/runs/LATEST)/payments
	@echo
	@echo "Fund files:    $(PAYMENTS_DATA_DIR)/funds/<fund>/"
	@echo "Run outputs:   $(PAYMENTS_DATA_DIR)/runs/$$(cat $(PAYMENTS_DATA_DIR)/runs/LATEST)/"
	@echo "At the bank:   $(PAYMENTS_DATA_DIR)/bank/<fund>/"
	@echo "Ledger:        $(PAYMENTS_DATA_DIR)/ledger.sqlite (payments audit verify)"

lint: $(STAMP)
	$(BIN)/ruff check payments tests dags plugins
	$(BIN)/mypy

test: lint
	$(BIN)/pytest -n 2 --dist loadfile -q

bench: $(STAMP)
	$(BIN)/python -m payments.benchmarks.sample_bench
	$(BIN)/python -m payments.benchmarks.pandera_backends 1000000

national: $(STAMP)
	$(BIN)/pytest -q -m national -p no:cacheprovider tests/test_national.py

# Refresh the constraints: a throw-away venv, unconstrained resolution of
# pyproject's ranges, then freeze. Review the diff, run `make test`, commit.
constraints:
	rm -rf .venv-constraints
	$(PYTHON) -m venv .venv-constraints
	.venv-constraints/bin/pip install --quiet --upgrade "pip>=24"
	.venv-constraints/bin/pip install --quiet -e '.[dev]'
	.venv-constraints/bin/pip check
	{ echo "# Exact versions CI tests with (our own Airflow constraints file). Refresh: make constraints"; \
	  .venv-constraints/bin/pip freeze --exclude-editable; } > constraints.txt
	rm -rf .venv-constraints

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The two commands of the README are the contract: `make demo` and `make test`.
# Both start from a bare machine with Python 3.11 and make: they create .venv and
# install the project with our own constraints file (constraints.txt), the pinned
# set of versions CI is tested with (Airflow's documented install path).

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OPENFISCA_VENV := .venv-openfisca
OPENFISCA_STAMP := $(OPENFISCA_VENV)/.installed
DATA ?= data
DEMO_HOUSEHOLDS ?= 20000
export PAYMENTS_DATA_DIR := $(abspath $(DATA))

.PHONY: demo airflow test lint install constraints constraints-openfisca openfisca bench bench-dag bench-distributed faults national clean help

help:
	@echo "make demo         set up, generate a sample and run the batch on embedded defaults"
	@echo "make test         set up and run the whole test suite (lint + types + pytest)"
	@echo "make airflow      the Airflow UI on this machine (trigger, approve) with the demo setup"
	@echo "make lint         ruff and mypy only"
	@echo "make bench        national-scale figures (prints a table; never asserts timings)"
	@echo "make bench-dag    the national run through the DAG under the real scheduler"
	@echo "make bench-distributed  the batch on 1 then 2 Celery workers (compose's settings)"
	@echo "make faults       kill the sender at every step; count files lost and paid twice"
	@echo "make constraints  refresh constraints.txt from a fresh, unconstrained install"
	@echo "make openfisca    the OpenFisca-France venv the scheme comparison runs in (make test builds it)"

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	$(BIN)/pip check
	@touch $(STAMP)

install: $(STAMP)

# Airflow on the embedded defaults: metadata in SQLite under the data folder,
# this checkout's DAGs and plugins. The demo approver answers the approval.
AIRFLOW_ENV = AIRFLOW_HOME=$(PAYMENTS_DATA_DIR)/airflow \
	AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__PLUGINS_FOLDER=$(CURDIR)/plugins \
	AIRFLOW__CORE__LOAD_EXAMPLES=False \
	AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=admin:admin,operator:op,finance:user,auditor:viewer,viewer:viewer \
	PAYMENTS_DEMO=1 \
	PAYMENTS_FINANCE_APPROVERS=finance,finance-demo \
	PAYMENTS_AUDITORS=auditor \
	PAYMENTS_OPERATORS=operator

# The demo plays every role: Airflow runs the DAG (dag.test), finance-demo (an
# approver only the demo names, recorded as such in the ledger) approves, files go to the
# (local) bank folder, then the batch at the bank is verified.
demo: $(STAMP)
	umask 077; $(BIN)/payments sample --households $(DEMO_HOUSEHOLDS) --defects 0.01
	umask 077; $(AIRFLOW_ENV) $(BIN)/airflow db migrate > /dev/null 2>&1
	umask 077; $(AIRFLOW_ENV) $(BIN)/python -m payments.orchestration.demo
	$(BIN)/payments verify $(PAYMENTS_DATA_DIR)/runs/$$(cat $(PAYMENTS_DATA_DIR)/runs/LATEST)/payments

# The Airflow UI on this machine: trigger the DAG as operator, approve as finance.
# The funds' files of the demo sample are generated first unless some are there.
airflow: $(STAMP)
	@test -d $(PAYMENTS_DATA_DIR)/funds || $(BIN)/payments sample --households $(DEMO_HOUSEHOLDS) --defects 0.01
	umask 077; $(AIRFLOW_ENV) $(BIN)/airflow db migrate > /dev/null 2>&1
	$(AIRFLOW_ENV) $(BIN)/airflow pools set payments_sftp 4 "SFTP sessions to funds and bank" > /dev/null
	@echo "Airflow UI: http://localhost:8080  users: operator (triggers), finance (approves), auditor, viewer, admin"
	@echo "Passwords: $(PAYMENTS_DATA_DIR)/airflow/simple_auth_manager_passwords.json.generated"
	umask 077; PATH=$(CURDIR)/$(BIN):$$PATH $(AIRFLOW_ENV) $(BIN)/airflow standalone

lint: $(STAMP)
	$(BIN)/ruff check payments bench tests dags plugins
	$(BIN)/mypy

test: lint $(OPENFISCA_STAMP)
	$(BIN)/pytest -n 2 --dist loadfile -q

# OpenFisca-France, the legal oracle our schemes are compared with
# (tests/test_openfisca.py), in its own venv: its pins conflict with Airflow's.
$(OPENFISCA_STAMP): constraints-openfisca.txt
	$(PYTHON) -m venv $(OPENFISCA_VENV)
	$(OPENFISCA_VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(OPENFISCA_VENV)/bin/pip install --quiet -r constraints-openfisca.txt
	$(OPENFISCA_VENV)/bin/pip check
	@touch $(OPENFISCA_STAMP)

openfisca: $(OPENFISCA_STAMP)

constraints-openfisca:
	rm -rf .venv-openfisca-constraints
	$(PYTHON) -m venv .venv-openfisca-constraints
	.venv-openfisca-constraints/bin/pip install --quiet "openfisca-france==176.1.8"
	{ echo "# OpenFisca-France, the legal oracle of tests/test_openfisca.py, in its own venv (its pins"; \
	  echo "# conflict with Airflow's). Exact versions CI tests with. Refresh: make constraints-openfisca"; \
	  .venv-openfisca-constraints/bin/pip freeze; } > constraints-openfisca.txt
	rm -rf .venv-openfisca-constraints

bench: $(STAMP)
	$(BIN)/python -m bench

# The national run through the DAG under the real scheduler (PostgreSQL ledger).
bench-dag: $(STAMP)
	$(BIN)/python -m bench --dag

bench-distributed: $(STAMP)
	$(BIN)/python -m bench --distributed

# Reliability: the sender SIGKILLed at each step, then carried on (tests/faults).
faults: $(STAMP)
	$(BIN)/python -m tests.faults.scenarios

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
	rm -rf $(VENV) $(OPENFISCA_VENV) .mypy_cache .ruff_cache .pytest_cache

# Every target sets itself up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test check lint types schemas docs sample-data bench lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

demo: install
	$(BIN)/crmkpi compute sample_data --period quarter --out demo_output
	@echo "results: demo_output/ (kpis.csv, kpis.xlsx, rfm, churn_risk, cohorts, clv_forecast, rejected/, manifest.json)"

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check crmkpi tests benchmarks
	$(BIN)/ruff format --check crmkpi tests benchmarks

types: install
	$(BIN)/mypy

check: lint types test

schemas: install
	$(BIN)/python -m crmkpi.tables schemas

docs: install
	$(BIN)/python -m crmkpi.docs README.md

# A measurement, not a test: SCALE=small|medium|large (medium takes a few minutes).
SCALE ?= medium
bench: install
	$(BIN)/python benchmarks/bench.py --scale $(SCALE)

sample-data: install
	$(BIN)/crmkpi sample-data sample_data --seed 7

# Re-pin every dependency after a change in pyproject.toml.
lock:
	rm -rf /tmp/crmkpi-lock && $(PYTHON) -m venv /tmp/crmkpi-lock
	/tmp/crmkpi-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/crmkpi-lock/bin/pip freeze --exclude-editable | grep -v '^crmkpi' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

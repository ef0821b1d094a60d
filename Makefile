# Every target sets itself up: a fresh machine needs only Python 3.11+ and make.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install system-deps demo screenshot test check lint types schemas docs sample-data bench fuzz lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Debian packages outside pip: Noto Sans CJK for the report's Chinese text and charts,
# Chromium for the headless-browser test and `make screenshot`, and a Java 17 runtime for
# PySpark 4.3 (`--engine spark` and its agreement test); their tests skip without them.
SYSTEM_PACKAGES := chromium fonts-noto-cjk openjdk-17-jre-headless
system-deps:
	@if command -v chromium >/dev/null && fc-list ':lang=zh' family | grep -q 'Noto Sans CJK' \
		&& command -v java >/dev/null; then \
		echo "system packages present: $(SYSTEM_PACKAGES)"; \
	else \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
			apt-get install -y -qq --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

demo: install
	$(BIN)/crmkpi compute sample_data --period quarter --format csv,xlsx,html --out demo_output
	@echo "results: demo_output/ (kpis.csv, kpis.xlsx, report.html, charts/, rfm, churn_risk, cohorts, clv_forecast, rejected/, manifest.json)"

# The README's picture of the report: the top of demo_output/report.html in headless Chromium.
screenshot: demo
	$(BIN)/python -m tests.browser demo_output/report.html docs/report.png

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
	$(BIN)/python -m crmkpi.docs README.md docs/config.md

# A measurement, not a test: SCALE=small|medium|large|xlarge (medium takes a few minutes).
# ENGINE=spark (or duckdb, sqlframe): that engine end to end against Polars instead, into
# benchmarks/results-ENGINE.md; FORMATS=parquet to measure one input format. SCALE=xlarge
# (100M order lines, larger than memory) needs FORMATS=parquet and leaves pandas out; large and
# xlarge write their results into benchmarks/SCALE/.
SCALE ?= medium
ENGINE ?= polars
FORMATS ?= parquet,csv
bench: install
	$(BIN)/python benchmarks/bench.py --scale $(SCALE) --engine $(ENGINE) --formats $(FORMATS)

# A longer search of the generated attacks than `make check` runs (FUZZ_EXAMPLES per test).
FUZZ_EXAMPLES ?= 500
fuzz: install
	CRMKPI_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/test_fuzz.py

sample-data: install
	$(BIN)/crmkpi sample-data sample_data --seed 7

# Re-pin every dependency after a change in pyproject.toml.
lock:
	rm -rf /tmp/crmkpi-lock && $(PYTHON) -m venv /tmp/crmkpi-lock
	/tmp/crmkpi-lock/bin/pip install --quiet -e '.[dev]'
	/tmp/crmkpi-lock/bin/pip freeze --exclude-editable | grep -v '^crmkpi' > requirements.lock

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache

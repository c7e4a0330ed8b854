# docflow — `make help` lists the targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.DEFAULT_GOAL := help
# Prerequisites are made one after the other, in the order written: the system packages
# (python3-venv among them) come before the venv that needs them, even under make -j.
.NOTPARALLEL:

help: ## List the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# The one install step for system packages (scripts/install-system-deps.sh explains it): as
# root it apt-get installs what is missing; without root it prints the apt-get command and
# falls back to the pgserver wheel for PostgreSQL. It prints nothing when nothing is missing.
sysdeps-demo: ## Install missing system packages for make demo: PostgreSQL, make, python3-venv
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install-system-deps.sh demo

sysdeps-test: ## The same for make test, plus chromium, chromium-driver and poppler
	@PYTHON=$(PYTHON) VENV=$(VENV) bash scripts/install-system-deps.sh test

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,cli]'
	touch $(STAMP)

.env:
	cp .env.example .env

setup: $(STAMP) .env ## Create the venv, install docflow with its dev tools, write .env
	@echo "setup done: activate with 'source $(VENV)/bin/activate'"

demo: sysdeps-demo setup ## Fresh clone to a working demo: system packages, local Postgres, migrations, upload, process, report
	$(BIN)/docflow demo

test: sysdeps-test setup ## System packages, then the whole test suite against a real local Postgres
	$(BIN)/pytest -q

dev: sysdeps-demo setup ## Serve every function on http://127.0.0.1:8080/<route> with a worker, until Ctrl-C; STORAGE=supabase: with the real Storage API
	$(BIN)/docflow serve --port 8080 --worker $(if $(filter supabase,$(STORAGE)),--storage-api)

bench: sysdeps-test setup ## Benchmarks: queue (vs raw SQL, Procrastinate), pipeline (vs pypdf), summaries and analysis (MB/s), the document corpus (vs pdftotext, pypdf, pdfminer.six), upload intake, analytics, retention, ReDoS, cold start
	$(BIN)/python bench/queue_bench.py
	$(BIN)/python bench/pipeline_bench.py
	$(BIN)/python bench/summarize_bench.py
	$(BIN)/python bench/analysis_bench.py
	@if [ -d ../shared/corpus ]; then $(BIN)/python bench/corpus_bench.py --rounds 3; \
	else echo "corpus_bench: no ../shared/corpus here (bench/corpus_bench.py --dir DIR), skipped"; fi
	$(BIN)/python bench/intake_bench.py
	$(BIN)/python bench/analytics_bench.py
	$(BIN)/python bench/retention_bench.py
	$(BIN)/python bench/redos_bench.py
	$(BIN)/python bench/coldstart_bench.py
	$(BIN)/python bench/facts_trigger_bench.py

crash: sysdeps-demo setup ## Crash harness: SIGKILLed workers and a PostgreSQL restart lose no job
	$(BIN)/python bench/crash.py

# The chart needs matplotlib, the `bench` extra (not part of `make test`): installed here when
# missing. Report, chart and logs go to /tmp/docflow-soak/<timestamp>/.
soak: sysdeps-demo setup ## Soak: MINUTES (15) of mixed uploads at RATE (half the measured capacity) against serve, 2 workers and the schedules; non-zero exit when a goal is missed
	@$(BIN)/python -c 'import matplotlib' 2>/dev/null || $(BIN)/pip install --quiet -e '.[bench]'
	$(BIN)/python bench/soak.py --minutes $(or $(MINUTES),15) $(if $(RATE),--rate $(RATE))

lint: setup ## ruff, mypy and the import layers (import-linter)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

schema: sysdeps-demo setup ## Regenerate supabase/schema.sql from a freshly migrated database
	$(BIN)/python -m shared.dev.schema --write

docs: setup ## Regenerate docs/configuration.md and .env.example from shared/platform/config.py
	$(BIN)/python -m shared.dev.configuration --write

fmt: setup ## Format and autofix with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

db-start: sysdeps-demo setup ## Start the embedded Postgres (and migrate)
	$(BIN)/docflow db start && $(BIN)/docflow db migrate

db-stop: setup ## Stop the embedded Postgres
	$(BIN)/docflow db stop

db-reset: sysdeps-demo setup ## Recreate the local database from the migrations and seed
	$(BIN)/docflow db reset

clean: ## Stop and delete the local cluster, remove the venv and local data
	-$(BIN)/docflow db destroy
	rm -rf $(VENV) .local .pytest_cache .mypy_cache .ruff_cache

.PHONY: help sysdeps-demo sysdeps-test setup demo test dev bench crash soak lint schema docs fmt db-start db-stop db-reset clean

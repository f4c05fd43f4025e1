# Every target installs what it needs into .venv first (uv, pinned requirements).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export UV_COMPILE_BYTECODE := 1

.PHONY: install sandbox test soak bench clean demo up down screenshot

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv==0.13.8
	@test -x $(PY) || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -r requirements-dev.txt
	$(PYTHON) -m uv pip install --quiet --compile-bytecode --python $(PY) --no-deps -e .
	@touch $@

install: $(VENV)/.installed ## Install the pinned runtime and test requirements into .venv

sandbox: install ## Run both API sandboxes in the foreground on 127.0.0.1
	$(PY) -m sandboxes

test: install ## Run the test suite (needs PostgreSQL: uses $$SYNC_STATE_DSN, or 127.0.0.1:5432, or starts an embedded one)
	$(PY) -m pytest $(PYTEST_ARGS)

# The package is linted, formatted and type-checked; the benchmark and the sandboxes are linted only.
PACKAGE_PATHS := plugins dags
.PHONY: lint
lint: install ## Lint, format check and type check (ruff, mypy; configured in pyproject.toml); CI runs it before the tests
	$(VENV)/bin/ruff check $(PACKAGE_PATHS) bench sandboxes
	$(VENV)/bin/ruff format --check $(PACKAGE_PATHS)
	$(VENV)/bin/mypy

SOAK_SECONDS ?= 600
SOAK_SEED ?= random
soak: install ## Convergence soak: users edit both systems while the flows run under faults; SOAK_SEED=<seed> replays one
	SOAK_SEED=$(SOAK_SEED) SOAK_SECONDS=$(SOAK_SECONDS) $(PY) -m pytest tests/soak/test_soak.py -q -p no:cacheprovider -o timeout=0 $(PYTEST_ARGS)

demo: install ## From a fresh clone: embedded PostgreSQL, seeded sandboxes, Airflow home; run each flow once; summary
	$(PY) tools/demo.py demo

up: install ## Airflow (UI on http://127.0.0.1:8080, admin/admin) and the sandboxes in the background; DAGs unpaused
	$(PY) tools/demo.py up

down: ## Stop everything demo/up started (Airflow, sandboxes, embedded PostgreSQL), by the PID files under .run/
	@if [ -x $(PY) ]; then $(PY) tools/demo.py down; else echo "nothing to stop (no $(VENV))"; fi

screenshot: up ## Log in to the Airflow UI in headless Chromium; save the DAG list, connection forms and console to docs/img
	$(PY) tools/screenshot.py

BENCH_SIZES ?= 1000 10000 100000
bench: install ## Benchmark the initial sync and a no-change run against the API floor (docs/benchmark.md)
	$(PY) bench/run.py $(BENCH_SIZES)

clean:
	rm -rf $(VENV) .pytest_cache

.PHONY: celery
CELERY_TENANTS ?= default
celery: install ## CeleryExecutor on 127.0.0.1 (Redis broker, 2 workers): run every flow of CELERY_TENANTS once, then stop
	$(PY) tools/celery_stack.py run --tenants $(CELERY_TENANTS)

# Every target installs what it needs into .venv first (uv, pinned requirements).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export UV_COMPILE_BYTECODE := 1

.PHONY: install sandbox test clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv==0.13.8
	@test -x $(PY) || $(PYTHON) -m uv venv --quiet --python $(PYTHON) $(VENV)
	$(PYTHON) -m uv pip install --quiet --compile-bytecode --python $(PY) -r requirements.txt -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed ## Install the pinned runtime and test requirements into .venv

sandbox: install ## Run both API sandboxes in the foreground on 127.0.0.1
	$(PY) -m sandboxes

test: install ## Run the test suite (needs PostgreSQL: uses $$SYNC_STATE_DSN, or 127.0.0.1:5432, or starts an embedded one)
	$(PY) -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache

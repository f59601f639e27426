# Two commands matter: `make run` (the service) and `make test` (the suite).
# Both build .venv from the lock files, so a fresh machine gets exactly what CI tested.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: run test lint typecheck lock bench clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python >= 3.11 is required"'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements/base.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/base.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || \
		$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: requirements/dev.lock pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --require-hashes --no-deps -r requirements/dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e . || \
		$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $@ $(VENV)/.installed

# The API on PORT; the portal simulator on a free port (CHISO_SIMULATOR_PORT pins it); the
# embedded PostgreSQL and Redis on Unix sockets in .data/. Two checkouts run side by side with
# two PORTs; a port that is taken stops it at once, in one line (exit status 3).
run: $(VENV)/.installed
	PORT=$(PORT) $(BIN)/chiso run

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check app worker migrations tests bench
	$(BIN)/ruff format --check app worker migrations tests bench

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy

# lint-imports checks the floors of docs/ARCHITECTURE.md ([tool.importlinter] in pyproject.toml).
test: lint typecheck
	$(BIN)/lint-imports
	$(BIN)/pytest $(PYTEST_ARGS)

# Benchmarks: chiso beside bare baselines, in one run (SCALE=small, the default, national, or
# smoke: seconds, run by `make test` through tests/test_bench.py;
# BENCH_ARGS="--scenarios batch --profile batch"). API_PROCESSES=1,2 measures every HTTP
# scenario with 1 and with 2 API processes (default: WEB_CONCURRENCY, else the core count).
# Results: bench/results/, docs/PERFORMANCE.md.
# Installs wrk with apt-get when missing (as root); only the smoke scale is part of `make test`.
bench: $(VENV)/.installed
	$(BIN)/python -m bench --scale $(or $(SCALE),small) \
		$(if $(API_PROCESSES),--workers $(API_PROCESSES)) $(BENCH_ARGS)

# Regenerate the lock files after changing dependencies in pyproject.toml.
lock:
	$(PYTHON) -m pip install --quiet uv
	$(PYTHON) -m uv pip compile pyproject.toml --python-version 3.11 --generate-hashes -o requirements/base.lock
	$(PYTHON) -m uv pip compile pyproject.toml --extra dev --python-version 3.11 --generate-hashes -o requirements/dev.lock

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache

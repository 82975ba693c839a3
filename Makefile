# The two commands of the README: `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
PORT ?= 8000
# Links in mail sent by jobs point at the port being served.
PORTAL_BASE_URL ?= http://127.0.0.1:$(PORT)
export PORTAL_BASE_URL
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv
UV := $(shell command -v uv 2>/dev/null || echo "$(PYTHON) -m uv")
VENV_PY := .venv/bin/python
MANAGE := $(VENV_PY) manage.py

.PHONY: install run test lint format migrate demo bench clean

# uv (from PyPI if the machine has none) and the locked dependencies in .venv, their
# bytecode compiled once here rather than by the first run of every process.
.venv/.installed: pyproject.toml uv.lock
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet --disable-pip-version-check uv
	$(UV) sync --frozen --compile-bytecode --python $(PYTHON)
	@touch $@

# axe-core for the browser tests' accessibility checks, when npm is on the machine;
# without it those tests skip (unless REQUIRE_BROWSER=1).
node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# The portal's own modules compiled too: with PYTHONDONTWRITEBYTECODE set (as on some
# machines and images) nothing would write their bytecode, and every process would compile
# them again (most of `manage.py check`'s start-up).
install: .venv/.installed
	@$(VENV_PY) -m compileall -q -j0 accounts billing config console core inbox marketplace refunds support manage.py >/dev/null
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory node_modules/.installed; \
	else echo "npm not found: the accessibility (axe-core) browser tests will be skipped"; fi

migrate: install
	$(MANAGE) migrate --noinput

# In this order: each command dates its payments after the previous one's, so the
# demo's invoice numbers follow their dates.
demo: migrate
	$(MANAGE) demo_data
	$(MANAGE) demo_billing
	$(MANAGE) demo_refunds
	$(MANAGE) demo_marketplace
	$(MANAGE) demo_support

run: demo
	$(MANAGE) serve --addr 127.0.0.1:$(PORT)

test: install
	$(VENV_PY) -m pytest $(PYTEST_ARGS)

# Every bench under bench/, on the PostgreSQL of DATABASE_URL when it is set, and their
# figures in one table (bench/run_all.py; BENCH_ARGS="--only billing_page" for one).
bench: install
	$(VENV_PY) bench/run_all.py $(BENCH_ARGS)

lint: install
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports --no-cache

format: install
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

clean:
	rm -rf .venv node_modules var db.sqlite3 staticfiles

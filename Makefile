# The two commands that do everything on a fresh machine:
#   make demo   transcribe the bundled samples on the embedded local stack (no cloud account)
#   make test   lint, type-check and run every test (unit, integration, e2e, infra)
# Both create .venv and install what they need; `make test` also installs the Node tools.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck unit integration e2e infra huawei-package bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# Stamp files so a second `make` does not reinstall.
$(VENV)/.local-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[local]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[dev]'
	touch $@ $(VENV)/.local-installed

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(VENV)/.local-installed
	$(BIN)/bucketscribe demo --out out/demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

test: $(VENV)/.dev-installed node_modules/.installed lint typecheck
	$(BIN)/python -m pytest -p no:cacheprovider

unit: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m unit

integration: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m integration

e2e: $(VENV)/.dev-installed
	$(BIN)/python -m pytest -m e2e

infra: $(VENV)/.dev-installed node_modules/.installed
	$(BIN)/python -m pytest -m infra

# The FunctionGraph code package for infra/huawei (Terraform uploads it): .build/huawei/*.zip
huawei-package: $(VENV)/.dev-installed
	$(BIN)/python infra/huawei/build_package.py

bench: $(VENV)/.dev-installed
	for b in cold_import pipeline_overhead transcode engine render; do $(BIN)/python bench/$$b.py || exit 1; done

clean:
	rm -rf $(VENV) node_modules .serverless .build out .pytest_cache .mypy_cache .ruff_cache

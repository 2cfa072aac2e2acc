# The two commands that do everything on a fresh machine:
#   make demo   transcribe the bundled samples on the embedded local stack (no cloud account)
#   make test   lint, type-check and run every test (unit, integration, e2e, infra)
# Both create .venv and install what they need; `make test` also installs the Node tools.
#   make install   put `bucketscribe` on PATH: a link in $(BINDIR) to .venv/bin/bucketscribe

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
BINDIR ?= $(HOME)/.local/bin
PIP    := $(BIN)/python -m pip

.PHONY: demo test lint typecheck unit integration e2e infra huawei-package bench soak install uninstall clean

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
	for b in cold_import pipeline_overhead hot_path transcode split engine render realtime stream_quality; do $(BIN)/python bench/$$b.py || exit 1; done
	$(BIN)/python bench/scale.py --quick

# 500 uploads with every fault at once (about 6-7 minutes on 2 cores): the exactly-once promise.
soak: $(VENV)/.dev-installed
	$(BIN)/python bench/soak.py

# A link, not a copy: the script runs .venv's Python, so the link works as long as the checkout does.
install: $(VENV)/.local-installed
	mkdir -p $(BINDIR)
	ln -sfn $(abspath $(BIN)/bucketscribe) $(BINDIR)/bucketscribe
	@echo "$(BINDIR)/bucketscribe -> $(abspath $(BIN)/bucketscribe)"
	@case ":$$PATH:" in *":$(BINDIR):"*) ;; \
	  *) echo "$(BINDIR) is not on PATH; add it, e.g.: echo 'export PATH=\"$(BINDIR):\$$PATH\"' >> ~/.bashrc" ;; esac

uninstall:
	@if [ "$$(readlink $(BINDIR)/bucketscribe)" = "$(abspath $(BIN)/bucketscribe)" ]; then \
	  rm $(BINDIR)/bucketscribe && echo "removed $(BINDIR)/bucketscribe"; \
	else echo "$(BINDIR)/bucketscribe is not our link; left alone"; fi

clean:
	rm -rf $(VENV) node_modules .serverless .build out .pytest_cache .mypy_cache .ruff_cache

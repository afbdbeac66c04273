# Every developer entry point: `make run`, `make test`, `make check`, `make gen`.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
MAKEFLAGS += --warn-undefined-variables --no-builtin-rules
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROTOS := $(shell find protos envoy/protos -name '*.proto')

.PHONY: help venv gen gen-check run test lint fmt types check clean fuzz

help:
	@echo "make run    set up and serve the demo (gRPC :50051, JSON :8080)"
	@echo "make test   set up and run every test"
	@echo "make check  format check, lint, types, generated-code check, tests"
	@echo "make gen    regenerate gen/ from protos/ (stubs, Envoy descriptor, OpenAPI)"
	@echo "make fuzz   long schemathesis run (FUZZ_CASES=50000)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

venv: $(STAMP)

gen: $(STAMP)
	$(BIN)/python scripts/gen.py

# Regenerates into gen/ and fails if that changed anything committed.
gen-check: gen
	git diff --exit-code --stat -- gen/
	test -z "$$(git status --porcelain -- gen/)"

run: $(STAMP)
	$(BIN)/python scripts/demo.py
	$(BIN)/weldpulse up

test: $(STAMP)
	$(BIN)/python -m pytest -q

# A long schemathesis run against the live stack (the default run in `make test` is 5,400 cases).
FUZZ_CASES ?= 50000
fuzz: $(STAMP)
	WELDPULSE_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

fmt: $(STAMP)
	$(BIN)/ruff format server tests scripts
	$(BIN)/ruff check --fix server tests scripts

lint: $(STAMP)
	$(BIN)/ruff format --check server tests scripts
	$(BIN)/ruff check server tests scripts

types: $(STAMP)
	$(BIN)/mypy

check: lint types gen-check test

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

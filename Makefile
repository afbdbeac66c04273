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

.PHONY: help venv gen gen-check run test lint fmt types check clean bench

help:
	@echo "make run    set up and serve the demo (gRPC :50051, JSON :8080)"
	@echo "make test   set up and run every test"
	@echo "make check  format check, lint, types, generated-code check, tests"
	@echo "make gen    regenerate gen/ from protos/"
	@echo "make bench  load EVENTS (default 1000000) synthetic events and time every /v1 endpoint"

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

fmt: $(STAMP)
	$(BIN)/ruff format server tests scripts bench
	$(BIN)/ruff check --fix server tests scripts bench

lint: $(STAMP)
	$(BIN)/ruff format --check server tests scripts bench
	$(BIN)/ruff check server tests scripts bench

types: $(STAMP)
	$(BIN)/mypy

check: lint types gen-check test

# Benchmarks (bench/run.py): never part of `make test` beyond a 10,000-event smoke run.
EVENTS ?= 1000000
ENGINE ?= embedded
bench: $(STAMP)
	cd bench && ../$(BIN)/python run.py --events $(EVENTS) --engine $(ENGINE)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache

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
# Node tooling (buf, protoc-gen-es, tsc) and the TypeScript client, pinned by its lockfile.
TS := clients/typescript
NODE_STAMP := $(TS)/node_modules/.package-lock.json
BUF := $(TS)/node_modules/.bin/buf
# The dashboard's sources (web/) and its built files, committed so running needs no Node.
WEB := web
WEB_STAMP := $(WEB)/node_modules/.package-lock.json
DASHBOARD := server/weldpulse/static/dashboard
AGAINST ?= HEAD~1

.PHONY: help venv node-deps dashboard gen gen-check run test test-package lint proto-lint breaking fmt types check clean fuzz bench bench-dashboard

help:
	@echo "make run    set up and serve the demo (gRPC :50051, JSON :8080)"
	@echo "make test   set up and run every test"
	@echo "make test-package  build the wheel, pipx-install it outside the checkout, run weldpulse up"
	@echo "make check  format check, lint, types, generated-code check, tests"
	@echo "make dashboard  rebuild the dashboard's committed files from web/ (needs Node)"
	@echo "make gen    regenerate gen/ (stubs, Envoy descriptor, OpenAPI), the clients' stubs and docs/api.md"
	@echo "make fuzz   long schemathesis run (FUZZ_CASES=50000)"
	@echo "make bench  load EVENTS (default 1000000) synthetic events and time every /v1 endpoint"
	@echo "make bench-dashboard  time the dashboard in Chromium on that data (BENCH_ARGS=--reuse keeps it)"

$(STAMP): pyproject.toml clients/python/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q -e clients/python
	touch $@

venv: $(STAMP)

# --ignore-scripts: buf's optional postinstall only swaps its launcher for the
# platform binary; the launcher finds that binary (@bufbuild/buf-linux-x64) itself.
$(NODE_STAMP): $(TS)/package-lock.json
	@command -v npm >/dev/null || { echo "buf and the TypeScript client need Node >= 20 and npm" >&2; exit 1; }
	npm ci --prefix $(TS) --no-audit --no-fund --ignore-scripts

$(WEB_STAMP): $(WEB)/package-lock.json
	@command -v npm >/dev/null || { echo "the dashboard's build needs Node >= 20 and npm" >&2; exit 1; }
	npm ci --prefix $(WEB) --no-audit --no-fund --ignore-scripts

node-deps: $(NODE_STAMP) $(WEB_STAMP)

# tests/test_dashboard_assets.py fails when these differ from a fresh build.
dashboard: $(WEB_STAMP)
	node $(WEB)/build.mjs $(DASHBOARD)

gen: $(STAMP)
	@if command -v node >/dev/null; then $(MAKE) --no-print-directory node-deps; fi
	$(BIN)/python scripts/gen.py
	$(BIN)/python scripts/api_docs.py

# Regenerates into gen/ and fails if that changed anything committed.
gen-check: gen
	git diff --exit-code --stat -- gen/ clients/ docs/api.md
	test -z "$$(git status --porcelain -- gen/ clients/ docs/api.md)"

# The demo's GeoIP file covers the demo's visitors only; set WELDPULSE_GEOIP_DB
# to a GeoLite2/GeoIP2 City database for real traffic.
run: $(STAMP)
	$(BIN)/python scripts/demo.py
	WELDPULSE_GEOIP_DB="$${WELDPULSE_GEOIP_DB:-$${WELDPULSE_DATA_DIR:-./var}/demo-geoip.mmdb}" $(BIN)/weldpulse up

test: $(STAMP)
	@if command -v node >/dev/null; then $(MAKE) --no-print-directory node-deps; fi
	$(BIN)/python -m pytest -q

# The wheel as a user installs it (~1 min, so not in `make test`; CI runs it).
test-package: $(STAMP)
	WELDPULSE_TEST_PACKAGE=1 $(BIN)/python -m pytest -q tests/test_package.py

# A long schemathesis run against the live stack (the default run in `make test` is 5,400 cases).
FUZZ_CASES ?= 50000
fuzz: $(STAMP)
	WELDPULSE_FUZZ_CASES=$(FUZZ_CASES) $(BIN)/python -m pytest -q -s tests/test_fuzz.py

fmt: $(STAMP)
	$(BIN)/ruff format server tests scripts clients/python bench
	$(BIN)/ruff check --fix server tests scripts clients/python bench

lint: $(STAMP) proto-lint
	$(BIN)/ruff format --check server tests scripts clients/python bench
	$(BIN)/ruff check server tests scripts clients/python bench

# buf lint (STANDARD + COMMENTS) and buf format on the protos; buf.yaml says why via an image.
proto-lint: $(STAMP) $(NODE_STAMP)
	$(BIN)/python scripts/buf_image.py build/protos.binpb
	$(BUF) lint build/protos.binpb --exclude-path google
	$(BUF) format --diff --exit-code

# Fails on a wire- or source-breaking proto change since $(AGAINST) (CI: the previous commit).
breaking: $(STAMP) $(NODE_STAMP)
	@if ! git rev-parse -q --verify '$(AGAINST)^{commit}' >/dev/null; then \
	  echo "breaking: skipped: $(AGAINST) is not in this clone (single-commit history)"; exit 0; fi; \
	rm -rf build/against && mkdir -p build/against; \
	git archive '$(AGAINST)' protos | tar -x -C build/against; \
	$(BIN)/python scripts/buf_image.py build/protos.binpb; \
	$(BIN)/python scripts/buf_image.py --root build/against build/against.binpb; \
	$(BUF) breaking build/protos.binpb --against build/against.binpb --exclude-path google; \
	echo "breaking: no breaking change since $$(git rev-parse --short '$(AGAINST)')"

types: $(STAMP)
	$(BIN)/mypy

check: lint types gen-check test

# Benchmarks (bench/run.py): never part of `make test` beyond a 10,000-event smoke run.
EVENTS ?= 1000000
ENGINE ?= embedded
BENCH_ARGS ?=
bench: $(STAMP)
	cd bench && ../$(BIN)/python run.py --events $(EVENTS) --engine $(ENGINE) $(BENCH_ARGS)

# The dashboard in Chromium on the same data (embedded): first tiles, panels, click-to-filter.
bench-dashboard: $(STAMP)
	$(BIN)/python web/perf.py --events $(EVENTS) $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build .pytest_cache .mypy_cache .ruff_cache $(TS)/node_modules $(TS)/dist $(WEB)/node_modules

# StayKey: the README's commands. Every target installs what it needs itself.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_STAMP := $(VENV)/.installed-demo
# sam build needs a python3.13 for the python3.13 runtime; pyenv provides one on these machines.
PYENV_VERSION_313 ?= 3.11.7:3.13.0
export SAM_CLI_TELEMETRY := 0
export AWS_DEFAULT_REGION ?= eu-central-1

.PHONY: help install lint typecheck template scan build speclint client unit test demo local fuzz bench simulate clean chromium

help:
	@echo "make demo   run the whole system on this machine and print a guest journey"
	@echo "make local  run the local stack in the foreground (Ctrl-C stops it)"
	@echo "make test   lint, type-check, check and scan the template, sam build, lint the specs, generate the client, run every test"
	@echo "make fuzz   schemathesis against a local stack, at least 1,000 cases"
	@echo "make simulate  10,000 simulated stays under faults, every invariant checked (local/sim)"
	@echo "make bench  run the benchmarks and print one table"

# .venv in two layers. make demo and make local install requirements-demo.txt only (the layer's
# runtime, boto3, moto's server for the stack's services, PyYAML, jsonschema: ~125 MB, ~15 s);
# every other target adds requirements-dev.txt (the tools and tests) on top. --no-compile: Python
# compiles what is imported on first use, instead of pip compiling every module of moto and botocore.
$(DEMO_STAMP): requirements-demo.txt layers/common/requirements.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --no-compile -r requirements-demo.txt
	@touch $@

$(STAMP): $(DEMO_STAMP) requirements-dev.txt
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy layers/common/staykey
	$(BIN)/mypy local tools

template: $(STAMP)
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml

# checkov on the template, from its own venv (its pins conflict with requirements-dev.txt). A failed
# check fails; a skipped one must carry its reason in the template (Metadata checkov skip comment).
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
$(CHECKOV_STAMP): requirements-checkov.txt
	@test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r requirements-checkov.txt
	@touch $@

scan: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python -m tools.scan_template --checkov $(CHECKOV_VENV)/bin/checkov

# Builds the python3.13/arm64 functions and layer without a container. Without a python3.13 it
# says so and skips, except under CI=true, where a skipped build is a failed build.
build: $(STAMP)
	@if PYENV_VERSION=$(PYENV_VERSION_313) python3.13 --version >/dev/null 2>&1; then \
	  PATH="$(CURDIR)/$(BIN):$$PATH" PYENV_VERSION=$(PYENV_VERSION_313) $(BIN)/sam build --template template.yaml; \
	elif [ "$${CI:-}" = "true" ]; then \
	  echo "sam build: no python3.13 on this machine (needed for the python3.13 runtime); failing because CI=true" >&2; exit 1; \
	else \
	  echo "sam build: SKIPPED, no python3.13 on this machine (install one, e.g. pyenv install 3.13, or use sam build --use-container)"; \
	fi

# Prism (npm) judges our Nuki traffic in tests/contract; axe-core checks the console's pages; htmx is
# vendored from its package (tests/unit/test_console_vendored.py); without npm those tests skip,
# under CI=true they fail.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then npm ci --no-audit --no-fund --silent && touch $@; \
	else echo "npm not found: the Prism contract test will be skipped (fails under CI=true)"; fi

# Redocly CLI (npm) lints openapi.yaml and openapi-nuki-webhook.yaml (redocly.yaml: the recommended
# rules as errors, so a warning fails too). Without npm it says so and skips; under CI=true it fails.
REDOCLY := node_modules/.bin/redocly
speclint: $(NODE_STAMP)
	@if [ -x $(REDOCLY) ]; then \
	  REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true $(REDOCLY) lint --format=stylish; \
	elif [ "$${CI:-}" = "true" ]; then echo "speclint: npm is needed for Redocly CLI; failing because CI=true" >&2; exit 1; \
	else echo "speclint: SKIPPED, npm not found"; fi

# A typed Python client generated from openapi.yaml by openapi-python-client (its own venv), into
# build/shop-client/staykey_shop_client; any generator warning fails. tests/e2e/test_generated_client.py
# runs a whole journey through it.
CLIENT_VENV := .venv-client
CLIENT_STAMP := $(CLIENT_VENV)/.installed
CLIENT_DIR := build/shop-client
$(CLIENT_STAMP): requirements-client.txt
	@test -x $(CLIENT_VENV)/bin/python || $(PYTHON) -m venv $(CLIENT_VENV)
	$(CLIENT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CLIENT_VENV)/bin/python -m pip install --quiet -r requirements-client.txt
	@touch $@

client: $(CLIENT_STAMP)
	rm -rf $(CLIENT_DIR)
	@mkdir -p $(CLIENT_DIR)
	PATH="$(CURDIR)/$(CLIENT_VENV)/bin:$$PATH" $(CLIENT_VENV)/bin/openapi-python-client generate \
	  --path openapi.yaml --meta none --output-path $(CLIENT_DIR)/staykey_shop_client --fail-on-warning

# The console's browser tests run Debian's headless Chromium (Playwright launches /usr/bin/chromium;
# it never downloads a browser). Installed here when missing; without apt-get the tests skip, and
# under CI=true they fail instead.
chromium:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian's chromium for the console's browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else echo "no /usr/bin/chromium and no apt-get: the console's browser tests will be skipped"; fi

unit: $(STAMP) $(NODE_STAMP) chromium
	PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 $(BIN)/pytest -q

test: lint typecheck template scan build speclint client unit

# The local stack (moto server, Nuki sandbox, the template's functions behind a local API Gateway,
# a schedule and queue dispatcher). Ports and settings from the environment: LOCAL_GATEWAY_PORT,
# LOCAL_NUKI_PORT, LOCAL_AWS_PORT, LOCAL_API_KEY, NUKI_API_TOKEN, NUKI_SIM_SYNC_DELAY_SECONDS,
# NUKI_API_URL (see local/stack.py).
demo: $(DEMO_STAMP)
	$(BIN)/python -m local.demo

local: $(DEMO_STAMP)
	$(BIN)/python -m local.stack

# schemathesis runs openapi.yaml against a local stack of its own (free ports): every route, every
# phase, at least 1,000 cases; fails on any 5xx, any answer unlike the spec, any crash in the logs,
# any PIN in a log line. make test runs the same fuzzer, bounded (tests/e2e/test_hardening_fuzz.py).
FUZZ_EXAMPLES ?= 60
fuzz: $(STAMP)
	$(BIN)/python -m tools.fuzz --max-examples $(FUZZ_EXAMPLES) --min-cases 1000

# The simulator (local/sim, docs/simulator.md): seeded seasons of the real services against the Nuki
# sandbox on a virtual clock, with faults, every invariant checked after every step; then the
# Hypothesis state machine explores further. Prints one table; fails on any violation.
SIM_STAYS ?= 10000
simulate: $(STAMP)
	$(BIN)/python -m local.sim --stays $(SIM_STAYS)
	SIM_EXAMPLES=300 $(BIN)/pytest -q -p no:cacheprovider tests/sim/test_stateful.py

# The benchmarks (bench/, about 8 minutes on 2 cores): one table on stdout, and bench/RESULTS.md with
# the machine it ran on. `$(BIN)/python -m bench.run --quick` is a shorter smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench.run

clean:
	rm -rf .aws-sam build .pytest_cache .mypy_cache .ruff_cache

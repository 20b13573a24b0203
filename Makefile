# The two set-up commands are `make dev` and `make test`; everything else is for developers.
SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(HOME)/.local/bin:$(PATH)

UV ?= $(shell command -v uv 2>/dev/null || echo $(HOME)/.local/bin/uv)
SRC := libs/common/src libs/db/src services/auth/src services/gateway/src services/tools/src services/cli/src
PYTEST_ARGS ?=

.PHONY: help uv sync dev test lint pytest fuzz bench fmt clean compose-config k8s-validate cluster

help:
	@echo "make dev    - install what is needed and run the whole stack (SQLite, no Redis, demo store)"
	@echo "make test   - ruff, mypy --strict and the whole pytest suite (real Redis/PostgreSQL)"
	@echo "make lint | bench | fmt | clean"
	@echo "make fuzz   - the fuzz tests (hypothesis, schemathesis) with 25x their normal budget"
	@echo "make compose-config | k8s-validate - check docker-compose.yml / deploy/k8s without a container engine"
	@echo "make cluster - the compose topology as local processes: nginx over two gateways (needs nginx)"

uv:
	@command -v $(UV) >/dev/null 2>&1 || { echo "installing uv"; python3 -m pip install --user --quiet uv; }

sync: uv
	$(UV) sync --all-packages --locked --quiet

dev: sync
	$(UV) run --no-sync till dev

lint: sync
	$(UV) run --no-sync ruff check .
	$(UV) run --no-sync mypy $(SRC) bench deploy

pytest: sync
	TILL_SECURITY_REPORT=1 TILL_COMPAT_REPORT=1 $(UV) run --no-sync pytest $(PYTEST_ARGS)

test: lint compose-config k8s-validate pytest

# The fuzz-marked tests under the hypothesis profile "fuzz" (conftest.py): each runs
# tests.support.FUZZ_FACTOR times its `make test` budget. Never writes the security/compat reports.
FUZZ_ARGS ?=
fuzz: sync
	$(UV) run --no-sync pytest -m fuzz --hypothesis-profile=fuzz --timeout=3600 -q $(FUZZ_ARGS)

compose-config: sync
	$(UV) run --no-sync python -m deploy.checks.compose

k8s-validate: sync
	$(UV) run --no-sync python -m deploy.checks.k8s

cluster: sync
	$(UV) run --no-sync python -m deploy.cluster

# SPEC §8 in one run (< 5 min, loopback): table + bench/results/latest.json; py-spy flamegraphs too.
BENCH_ARGS ?= --profile
bench: sync
	$(UV) run --no-sync python -m bench $(BENCH_ARGS)

fmt: sync
	$(UV) run --no-sync ruff check --fix .

clean:
	rm -rf var .mypy_cache .ruff_cache

# The single entry point: run, test, lint, bench, synth. Every target bootstraps .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.synced
UV_VERSION := 0.13.8

.PHONY: run test test-fast lint format bench synth deploy cost openapi clean
STAGE ?= dev

$(STAMP): pyproject.toml uv.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(UV) || $(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	@# --inexact keeps uv itself (installed by pip above) in the environment.
	$(UV) sync --frozen --inexact --all-extras --python $(BIN)/python
	@touch $@

run: $(STAMP)
	$(BIN)/tekoa up

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup

test-fast: $(STAMP)
	$(BIN)/python -m pytest -n 2 tests/unit

# Architecture contracts (pyproject [tool.importlinter]); the fill model's applies once it exists.
IMPORT_CONTRACTS := pure-core api-cold-start models-without-kernels \
	$(if $(wildcard layers/tekoa/tekoa/execution/fills*),pure-fills)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy layers/tekoa/tekoa functions infra
	$(BIN)/lint-imports $(addprefix --contract ,$(IMPORT_CONTRACTS))

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: $(STAMP)
	@for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

synth: $(STAMP)
	$(BIN)/python -m infra.app

# Needs AWS credentials and network: bundles each zip function with its locked dependencies
# and builds the container images.
deploy: $(STAMP)
	npx --yes aws-cdk@2 deploy --all -c stage=$(STAGE) --require-approval broadening

# The README's idle-cost table, recomputed from freshly synthesised templates (and written back).
cost: $(STAMP)
	$(BIN)/python -m infra.cost --write-readme

openapi: $(STAMP)
	$(BIN)/python -m functions.api.openapi > openapi.json

clean:
	rm -rf $(VENV) cdk.out .pytest_cache .mypy_cache .ruff_cache

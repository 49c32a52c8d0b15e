# The README's commands. Each target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-fast test-faults lint bench bench-verify bench-audit bench-grpc bench-reconcile bench-below-scale bench-subsidy bench-national clean

$(STAMP): pyproject.toml hatch_build.py protos/subsidy_ledger/v1/ledger.proto
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/subsidy-ledger demo

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/mypy domain projections adapters
	$(BIN)/pytest

# The unit level only (pure rules, formats, the application in memory): no database, seconds.
test-fast: $(STAMP)
	$(BIN)/pytest tests/unit

# The fault injection at length: 25 kills of each kind on each store, their figures printed.
test-faults: $(STAMP)
	LEDGER_FAULT_RUNS=$${LEDGER_FAULT_RUNS:-25} $(BIN)/pytest -m faults -s \
		tests/e2e/test_faults.py tests/e2e/test_outage.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy domain projections adapters

bench: $(STAMP)
	$(BIN)/python bench/import_register.py

bench-verify: $(STAMP)
	$(BIN)/python bench/verify_chain.py

bench-audit: $(STAMP)
	$(BIN)/python bench/audit_queries.py

bench-grpc: $(STAMP)
	$(BIN)/python bench/grpc_service.py

bench-reconcile: $(STAMP)
	$(BIN)/python bench/reconcile.py

bench-below-scale: $(STAMP)
	$(BIN)/python bench/below_scale.py

bench-subsidy: $(STAMP)
	$(BIN)/python bench/social_insurance.py

# The national simulation: 10,000, 100,000 and 500,000 firms, about 16 minutes
# (FIRMS=20000 for one quick size).
bench-national: $(STAMP)
	$(BIN)/python bench/national.py $(if $(FIRMS),--firms $(FIRMS))

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

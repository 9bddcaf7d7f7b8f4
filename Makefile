# `make demo` and `make test` work on a fresh machine with only Python, git and make:
# the first run creates .venv and installs the project; later runs skip the install
# unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench schemas clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# In parallel on every core; `.venv/bin/python -m pytest tests/func/test_x.py` runs one file.
test: $(STAMP)
	$(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests examples
	$(BIN)/ruff format --check reconciler tests examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python tests/bench/bench.py
	$(BIN)/python tests/bench/bench_audit.py
	$(BIN)/python tests/bench/bench_reconcile.py

# Regenerate schemas/ from the pydantic models, the built-in policy packs JSON from their
# YAML, and the builtin connectors' digests (tests fail when any drifts).
schemas: $(STAMP)
	$(BIN)/python -m reconciler.model.schemagen
	$(BIN)/python -m reconciler.policy.packgen
	$(BIN)/python -m reconciler.packages.builtin

clean:
	rm -rf $(VENV) build dist .bench

# `make demo` and `make test` work on a fresh machine with only Python, git and make:
# the first run creates .venv and installs the project; later runs skip the install
# unless pyproject.toml changed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint bench schemas clean wheelhouse

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py

# The distributions the pypi tests install (tests/wheelhouse.txt and their closure), fetched once
# from the package index; refilled only when the list changes (the stamp is a copy of it).
WHEELHOUSE := .wheelhouse
WHEELS := tests/wheelhouse.txt

wheelhouse: $(STAMP)
	@cmp -s $(WHEELS) $(WHEELHOUSE)/.stamp 2>/dev/null || { \
		rm -rf $(WHEELHOUSE) && \
		$(BIN)/python -m pip download --quiet --quiet --disable-pip-version-check --only-binary :all: \
			--dest $(WHEELHOUSE) -r $(WHEELS) && \
		cp $(WHEELS) $(WHEELHOUSE)/.stamp; }

# In parallel on every core; `.venv/bin/python -m pytest tests/func/test_x.py` runs one file.
test: $(STAMP) wheelhouse
	$(BIN)/python -m pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check reconciler tests examples
	$(BIN)/ruff format --check reconciler tests examples
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP) wheelhouse
	$(BIN)/python tests/bench/bench.py
	$(BIN)/python tests/bench/bench_audit.py
	$(BIN)/python tests/bench/bench_reconcile.py
	$(BIN)/python tests/bench/bench_connectors.py
	$(BIN)/python tests/bench/bench_gateway.py
	$(BIN)/python tests/bench/bench_sandbox.py
	$(BIN)/python tests/bench/bench_egress.py
	$(BIN)/python tests/bench/bench_vault.py
	$(BIN)/python tests/bench/bench_runs.py
	$(BIN)/python tests/bench/bench_redact.py

# Regenerate schemas/ from the pydantic models, the built-in policy packs JSON from their
# YAML, the skill packs' JSON from theirs, and the builtin connectors' digests (tests fail when
# any drifts).
schemas: $(STAMP)
	$(BIN)/python -m reconciler.model.schemagen
	$(BIN)/python -m reconciler.policy.packgen
	$(BIN)/python -m reconciler.load.skills
	$(BIN)/python -m reconciler.packages.builtin

clean:
	rm -rf $(VENV) build dist .bench $(WHEELHOUSE)

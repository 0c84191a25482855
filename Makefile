# The two commands a newcomer needs: `make demo` and `make test`. Both set up .venv first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
LOCK   := requirements.lock

.PHONY: demo test lint typecheck bench fuzz soak lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet -c $(LOCK) -e .
	touch $@

$(VENV)/.installed-test: $(BIN)/python pyproject.toml $(LOCK)
	$(BIN)/pip install --quiet -c $(LOCK) -e '.[test]'
	touch $@ $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/openami demo

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks fuzz

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy

test: lint typecheck
	$(BIN)/pytest --cov --cov-report=term --cov-report=xml

# Every atheris fuzz target for FUZZ_SECONDS (default 60) each; non-zero if one finds a crash.
fuzz: $(VENV)/.installed-test
	FUZZ_SECONDS=$${FUZZ_SECONDS:-60} bash fuzz/run.sh

# The head-end killed with SIGKILL 1,000 times during ingest (needs NATS on 127.0.0.1:4222);
# make test runs the same test with 50 kills.
soak: $(VENV)/.installed-test
	SOAK_KILLS=$${SOAK_KILLS:-1000} $(BIN)/pytest -q tests/headend/test_kill.py

bench: $(VENV)/.installed
	$(BIN)/openami bench --all --json

# Refresh the lock file after changing dependency ranges in pyproject.toml.
lock: $(BIN)/python
	$(BIN)/pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra test --extra dev --strip-extras --no-emit-index-url \
		--no-emit-find-links --no-emit-trusted-host --output-file $(LOCK) pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml openami-data

# Two commands for a new user: `make demo` and `make test`. Both bootstrap .venv from
# requirements.lock (pinned, hashed) when it is missing or older than the lock/pyproject.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv lock clean-out help dagster

help:
	@echo "make demo   - raw -> reports for both studies on the bundled sample data (out/)"
	@echo "make test   - run the test suite"
	@echo "make dagster - the Dagster UI for both studies"
	@echo "make lock   - re-pin requirements.lock from pyproject.toml (needs network)"

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade "pip>=24"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/clinpipe demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	    --generate-hashes -o requirements.lock

clean-out:
	rm -rf out

dagster: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev -m pipelines.definitions

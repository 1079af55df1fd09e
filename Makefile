# Two commands for a new user: `make demo` and `make test`. Both bootstrap .venv from
# requirements.lock (pinned, hashed) when it is missing or older than the lock/pyproject.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test venv lock clean-out help dagster samples test-tools

help:
	@echo "make demo   - both studies on the bundled sample data through Dagster, raw -> submission (out/)"
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

# The demo's Dagster runs go into the instance in this folder (dagster.yaml), so `make dagster`
# shows them afterwards.
demo: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/clinpipe demo

# Debian packages the tests use: LibreOffice and poppler for the RTF render check, the
# PostgreSQL server for the PostgreSQL-backed Dagster instance, Chromium for the web-UI check.
# Installed when missing and apt-get can (root), else say how; nothing to do when all are there.
test-tools:
	@missing=""; \
	command -v soffice >/dev/null || missing="$$missing libreoffice-writer-nogui"; \
	command -v pdftoppm >/dev/null || missing="$$missing poppler-utils"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -z "$$missing" ] || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing for the tests"; \
	    export DEBIAN_FRONTEND=noninteractive; log=$$(mktemp); \
	    if (apt-get install -y -q --no-install-recommends $$missing \
	        || { apt-get update -q && apt-get install -y -q --no-install-recommends $$missing; }) \
	        >$$log 2>&1; then rm -f $$log; else cat $$log; rm -f $$log; exit 1; fi; \
	  else echo "need:$$missing -- sudo apt-get install$$missing"; exit 1; fi; }

test: $(STAMP) test-tools
	$(BIN)/python -m pytest -n auto --dist loadfile --durations=15

lock:
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
	    --generate-hashes -o requirements.lock

clean-out:
	rm -rf out

dagster: $(STAMP)
	DAGSTER_HOME=$(CURDIR) $(BIN)/dagster dev -m pipelines.definitions

# The committed sample transfers (deterministic: same seeds, same files). See data/raw/README.md.
# The faulty copies (data/raw-faults/) are the same snapshots with every record-level fault the
# build survives; non_ascii, long_text and missing_required (when it blanks a field feeding a
# Required SDTM variable) still stop an SDTM build (open issue 13), file-level faults are
# refused by the reader by design.
FAULTS := duplicate_record,inactivated_record,impossible_date,unknown_code,out_of_range,orphan_subject
samples: $(STAMP)
	rm -rf data/raw/RS001 data/raw/GLOCART data/raw-faults/RS001 data/raw-faults/GLOCART
	$(BIN)/clinpipe simulate --study RS001 --subjects 36 --seed 1 --format csv --out 'data/raw/RS001/{transfer_date}/csv'
	$(BIN)/clinpipe simulate --study RS001 --subjects 36 --seed 1 --format odm --out 'data/raw/RS001/{transfer_date}/odm'
	$(BIN)/clinpipe simulate --study RS001 --subjects 36 --seed 1 --format csv --transfer-date 2025-02-27 --out 'data/raw/RS001/{transfer_date}/csv'
	$(BIN)/clinpipe simulate --study GLOCART --subjects 40 --seed 1 --format csv --out 'data/raw/GLOCART/{transfer_date}/csv'
	$(BIN)/clinpipe simulate --study GLOCART --subjects 40 --seed 1 --format odm --out 'data/raw/GLOCART/{transfer_date}/odm'
	$(BIN)/clinpipe simulate --study RS001 --subjects 36 --seed 1 --format csv --faults $(FAULTS) --out 'data/raw-faults/RS001/{transfer_date}/csv'
	$(BIN)/clinpipe simulate --study GLOCART --subjects 40 --seed 1 --format csv --faults $(FAULTS) --out 'data/raw-faults/GLOCART/{transfer_date}/csv'

# Two commands matter: `make demo` and `make test`. Each sets itself up idempotently.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SYS_STAMP := $(VENV)/.system-packages
APT_PACKAGES := espeak-ng libespeak-ng1 chromium chromium-driver

.PHONY: demo test setup system-packages lint typecheck pytest validate clean

demo: setup
	$(VENV)/bin/ivr demo
	@echo "To see it in the operator console (the server keeps running): $(VENV)/bin/ivr demo --console"

test: setup lint typecheck pytest

setup: $(STAMP)

system-packages:
	@bash scripts/system-packages.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml scripts/system-packages.sh
	@$(MAKE) --no-print-directory system-packages
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# Silero VAD's ONNX model only: the package's own dependency on PyTorch is not needed.
	$(PY) -m pip install --quiet --no-deps 'silero-vad>=6,<7'
	@touch $(STAMP)

lint:
	$(VENV)/bin/ruff check ivr tests bench
	$(VENV)/bin/ruff format --check ivr tests bench

typecheck:
	$(VENV)/bin/mypy

# The engine is the heart of every call: its modules must stay at 100% line and branch coverage.
ENGINE_MODULES := ivr/dialplan/engine.py,ivr/dialplan/intents.py,ivr/dialplan/digits.py

pytest:
	$(VENV)/bin/coverage erase
	$(VENV)/bin/pytest --cov=ivr --cov-branch --cov-report=
	$(VENV)/bin/coverage report --include='$(ENGINE_MODULES)' --show-missing --fail-under=100

validate: setup
	$(VENV)/bin/ivr validate

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache audio/cache var

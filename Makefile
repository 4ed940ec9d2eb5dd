# Oráculo: `make demo` sets everything up and runs the offline pipeline; `make test` runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup demo test bot clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first (a plain `torch` would pull several GB of CUDA packages)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/oraculo demo

test: $(STAMP)
	$(BIN)/python -m pytest

bot: $(STAMP)
	$(BIN)/oraculo bot

clean:
	rm -rf $(VENV) data .pytest_cache

# Oráculo: `make demo` sets everything up and runs the offline pipeline; `make test` runs the test suite.
# Installs are reproducible: scripts/requirements.lock pins every package the tests passed with (made by uv, see `lock`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# LLAMACPP=1 also installs llama-cpp-python (LLM_BACKEND=llamacpp): it compiles llama.cpp, ~6 min on 2 cores.
LLAMACPP ?= 0
STAMP := $(VENV)/.installed-llamacpp$(LLAMACPP)
TORCH := torch==2.13.0
# `make lock` resolves torch to this CPU build, so no CUDA package enters the lock (torch itself is left out:
# it is installed first, on its own). Here its wheel lies on disk; elsewhere PyTorch's CPU index has it.
TORCH_CPU_WHEELS ?= $(if $(wildcard /opt/wheels/torch-2.13.0+cpu-*),--find-links /opt/wheels,--extra-index-url https://download.pytorch.org/whl/cpu --index-strategy unsafe-best-match)
UPGRADE ?=

.PHONY: setup demo test bot clean lock

$(STAMP): pyproject.toml scripts/requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first (a plain `torch` would pull several GB of CUDA packages)
	$(BIN)/pip install --quiet $(TORCH)
	# every other package exactly as locked, nothing resolved again; llama-cpp-python only with LLAMACPP=1
	grep -v $(if $(filter 1,$(LLAMACPP)),'^$$','^llama-cpp-python==') scripts/requirements.lock > $(VENV)/requirements.txt
	$(BIN)/pip install --quiet --no-deps -r $(VENV)/requirements.txt
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 $(BIN)/oraculo demo

test: $(STAMP)
	$(BIN)/python -m pytest

bot: $(STAMP)
	$(BIN)/oraculo bot

# Refresh the lock: `make lock` adds what pyproject.toml gained and keeps every other pin;
# `make lock UPGRADE=--upgrade` moves everything to the newest versions pyproject.toml allows. Then `make test`.
lock: $(STAMP)
	$(BIN)/pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra llamacpp --python-version 3.11 \
		--python-platform x86_64-manylinux_2_28 $(TORCH_CPU_WHEELS) --override .ci/torch-cpu.txt \
		--no-emit-package torch --custom-compile-command "make lock" $(UPGRADE) -o scripts/requirements.lock
	! grep -Eqi '^(nvidia-|triton==|torch==)' scripts/requirements.lock

clean:
	rm -rf $(VENV) data .pytest_cache

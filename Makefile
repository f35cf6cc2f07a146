# Two commands set everything up on a fresh machine:
#   make demo   # creates .venv, then runs the demo on embedded defaults
#   make test   # creates .venv, then runs ruff and the whole test suite (what CI runs)
PYTHON ?= python3
VENV ?= .venv
# The CPU build of torch 2.13.0 lies on disk on our machines; with a GPU, install torch first the usual way.
TORCH_SPEC ?= torch==2.13.0
# torchvision for the processor parity tests only (transformers' video processor and qwen-vl-utils
# import it). PyPI's build for torch 2.13 links CUDA: installed without its dependencies (no CUDA
# torch pulled in) into a folder of its own that only the parity tests' worker process puts on its
# path, after tests/fixtures/torchvision_cpu.py has made it importable beside the CPU build. In the
# venv itself it would break every transformers import. Skipped where torchvision already imports.
TORCHVISION_SPEC ?= torchvision==0.28.0
PARITY_SITE := $(VENV)/parity-site
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -c "import torchvision" 2>/dev/null \
		|| $(BIN)/pip install -q --no-deps --target $(PARITY_SITE) "$(TORCHVISION_SPEC)"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tempo demo

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

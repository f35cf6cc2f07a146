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

.PHONY: venv browser demo test lint bench clean

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

# The console's browser tests drive Debian's chromium through Playwright (never a downloaded browser):
# installed here when missing and running as root (CI is root on a fresh Debian machine).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
		else echo "note: /usr/bin/chromium is missing (apt-get install chromium as root); browser tests will skip"; fi; \
	fi

test: lint browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache

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
# lmms-eval (the release's evaluation route) lives in its own venv, LMMS_VENV, which sees the project's venv
# through a .pth file: `make lmms` builds it (`make venv` too: CI runs the plugin's tests in it). lmms-eval is
# installed without its dependency tree (it pins av<16 and pulls torchvision, i.e. a CUDA torch on Linux, over
# the project's torch and PyAV), with exactly the modules `lmms-eval eval` imports on the plugin's path and
# what the benchmarks' task files import (opencv-python-headless: videomme; decord: longvideobench); kept
# apart because it pins filelock<4 and brings pandas, datasets and others that the project does not need.
LMMS_VENV ?= $(VENV)-lmms
LMMS_EVAL_SPEC ?= lmms-eval==0.7.3
LMMS_EVAL_DEPS := accelerate==1.15.0 aiohappyeyeballs==2.7.1 aiohttp==3.14.5 aiosignal==1.4.0 chardet==6.0.0.post1 \
	colorama==0.4.6 DataProperty==1.1.1 datasets==5.2.0 dill==0.4.1 evaluate==0.4.6 filelock==3.32.7 frozenlist==1.8.0 \
	loguru==0.7.3 lxml==6.1.3 mbstrdecoder==1.1.5 multidict==7.2.1 multiprocess==0.70.19 pandas==3.1.1 \
	pathvalidate==3.3.1 pillow==13.0.0 portalocker==4.4.2 propcache==0.5.4 pytablewriter==1.2.1 \
	python-dateutil==2.9.0.post0 pytz==2026.6 sacrebleu==2.6.0 six==1.17.0 tabledata==1.3.5 tabulate==0.10.0 \
	tcolorpy==0.1.7 typepy==1.3.5 yarl==1.25.1 opencv-python-headless==4.13.0.92 decord==0.6.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `transformers serve` (the real OpenAI-compatible server the remote answerer is tested against,
# tests/models/test_transformers_serve.py) lives in its own venv, SERVE_VENV: it sees the project's venv through
# a .pth file (the same torch and transformers, and the fastapi, uvicorn, starlette, pydantic, rich and kernels
# of transformers' `serving` extra) and adds only the rest of that extra and torchvision, pinned in
# requirements-serve.txt, without their dependency trees. Kept apart because torchvision in the project's venv
# changes how transformers loads every model. Beside CPU torch, PyPI's CUDA-linked torchvision imports through
# tests/fixtures/torchvision_cpu.py, installed with a .pth hook (a no-op where its compiled parts load).
# bin/transformers runs transformers' own CLI on the venv's Python (its console script, written as pip writes
# one: the __main__ guard matters, the model's process is spawned and re-reads the script). About 30 s; rebuilt when the pins, the hook or this file change.
SERVE_VENV ?= $(VENV)-serve
SERVE_STAMP := $(SERVE_VENV)/.installed

.PHONY: venv lmms lmms-venv serve-venv browser bench-deps speech demo test lint bench clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install -q "$(TORCH_SPEC)"
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/python -c "import torchvision" 2>/dev/null \
		|| $(BIN)/pip install -q --no-deps --target $(PARITY_SITE) "$(TORCHVISION_SPEC)"
	$(MAKE) --no-print-directory lmms-venv
	touch $(STAMP)

# `make lmms`: the project's venv, then lmms-eval's beside it; run `$(LMMS_VENV)/bin/lmms-eval eval --model tempo ...`.
lmms: $(STAMP)

lmms-venv:
	rm -rf $(LMMS_VENV) && $(PYTHON) -m venv $(LMMS_VENV)
	echo "import site; site.addsitedir('$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')')" \
		> "$$($(LMMS_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')/tempo-project.pth"
	$(LMMS_VENV)/bin/pip install -q --no-deps "$(LMMS_EVAL_SPEC)" $(LMMS_EVAL_DEPS)

# `make serve-venv`: then `$(SERVE_VENV)/bin/transformers serve DIR --host 127.0.0.1 --port PORT` (README, Open weights).
serve-venv: $(SERVE_STAMP)

$(SERVE_STAMP): requirements-serve.txt tests/fixtures/torchvision_cpu.py Makefile | $(STAMP)
	rm -rf $(SERVE_VENV) && $(BIN)/python -m venv $(SERVE_VENV)
	site="$$($(SERVE_VENV)/bin/python -c 'import site; print(site.getsitepackages()[0])')" \
		&& echo "import site; site.addsitedir('$$($(BIN)/python -c 'import site; print(site.getsitepackages()[0])')')" \
			> "$$site/tempo-project.pth" \
		&& cp tests/fixtures/torchvision_cpu.py "$$site/torchvision_cpu.py" \
		&& echo "import torchvision_cpu; torchvision_cpu.install_import_hook()" > "$$site/torchvision-cpu.pth"
	$(SERVE_VENV)/bin/pip install -q --no-deps -r requirements-serve.txt
	printf '#!%s\nimport sys\nfrom transformers.cli.transformers import main\nif __name__ == "__main__":\n    sys.exit(main())\n' \
		"$(abspath $(SERVE_VENV))/bin/python" > $(SERVE_VENV)/bin/transformers && chmod +x $(SERVE_VENV)/bin/transformers
	$(SERVE_VENV)/bin/python -c "from transformers.utils.import_utils import is_serve_available as a; import torchvision; assert a()"
	touch $@

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

# bench/ingest.py measures against Debian's ffmpeg (the imageio-ffmpeg wheel's static build otherwise).
bench-deps:
	@if [ ! -x /usr/bin/ffmpeg ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q ffmpeg; \
		else echo "note: /usr/bin/ffmpeg is missing (apt-get install ffmpeg as root); bench/ingest.py uses imageio-ffmpeg's"; fi; \
	fi

# The speech-recognition tests say their text with Debian's espeak-ng: installed here when missing and
# running as root (CI); without it those tests fail rather than skip.
speech:
	@if ! command -v espeak-ng >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q espeak-ng; \
		else echo "note: espeak-ng is missing (apt-get install espeak-ng as root); the speech tests will fail"; fi; \
	fi

test: lint browser speech serve-venv
	$(BIN)/python -m pytest -q

bench: $(STAMP) bench-deps
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(LMMS_VENV) $(SERVE_VENV) build *.egg-info .pytest_cache .ruff_cache

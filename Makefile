# cocoseg: `make run` serves the app on the demo data, `make test` runs the whole suite.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# := so that a HOST variable in the environment never opens the app; `make run HOST=0.0.0.0` still does
HOST := 127.0.0.1
PORT := 8050
# the browser tests' Chromium: $CHROMIUM_PATH when set, else the system package
CHROMIUM := $(or $(CHROMIUM_PATH),/usr/bin/chromium)
# pytest-xdist workers for make test and make test-fast; each test file stays in one worker (--dist loadfile),
# so a module's fixtures are built once. `make test TEST_WORKERS=1` runs one process.
TEST_WORKERS ?= 2
PYTEST_WORKERS := -n $(TEST_WORKERS) --dist loadfile
# the Celery-mode tests' redis-server: $REDIS_SERVER when set, else the one on PATH (tests/celery_support.py)
REDIS := $(or $(REDIS_SERVER),$(shell command -v redis-server 2>/dev/null))
# GPU=1 adds the `gpu` extra (the CUDA 13 / cuDNN 9 wheels ONNX Runtime needs, and TensorFlow's CUDA 12
# ones); by default it is on when nvidia-smi lists a GPU. `make run GPU=0` keeps a GPU machine on the CPU
# install, `make run GPU=1` asks for it anyway. `cocoseg doctor` says what each runtime can use.
GPU ?= $(shell nvidia-smi -L >/dev/null 2>&1 && echo 1 || echo 0)
GPU_EXTRA := $(if $(filter 1,$(GPU)),$(VENV)/.installed-gpu)

.PHONY: run doctor test test-all test-fast test-browser-slow lint format setup setup-dev web browser redis validate-demo stats-demo benchmark benchmark-input benchmark-training benchmark-inference benchmark-gpu clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || { echo "cocoseg needs Python 3.10 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	@touch $@

$(VENV)/.installed-gpu: $(VENV)/.installed
	@echo "installing the gpu extra (CUDA and cuDNN wheels, a few GB): make run GPU=0 skips it"
	$(BIN)/pip install --quiet -e '.[gpu]'
	@touch $@

$(VENV)/.installed-dev: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $@

## setup: create .venv and install cocoseg, and the browser bundles from the npm registry
setup: $(VENV)/.installed $(GPU_EXTRA) web

## web: plotly.js's cartesian bundle (package.json, pinned) into node_modules, which the app serves instead
## of the full plotly.js (cocoseg/app/plotly_bundle.py); without npm the app serves the full bundle and says so
web: node_modules/.package-lock.json

node_modules/.package-lock.json: package.json package-lock.json
	@if command -v npm >/dev/null; then npm ci --omit=dev --no-audit --no-fund --ignore-scripts --loglevel=error; \
	else echo "npm not found: the app will serve the full plotly.js bundle (install Node.js and npm, then make web)"; fi

## setup-dev: setup + test tools + the system Chromium used by browser tests + redis-server for the Celery-mode tests
setup-dev: $(VENV)/.installed-dev $(GPU_EXTRA) web browser redis

## browser: the system chromium package when Chromium is missing (root or sudo); never a browser
## download: without either, it stops and says what to install
browser: $(VENV)/.installed-dev
	@if [ ! -x $(CHROMIUM) ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver >/dev/null; \
		else echo "no Chromium at $(CHROMIUM) and no root to install it: install the system chromium package (apt-get install chromium) or set CHROMIUM_PATH"; exit 1; fi; \
	fi

## redis: the system redis-server package when redis-server is missing (root or sudo); without either,
## the Celery-mode tests are skipped and say why. The tests start their own private server on a free
## port; on a machine with systemd the package also starts a system service, which they do not use.
redis:
	@if [ -z "$(REDIS)" ] || [ ! -x "$(REDIS)" ]; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; \
		elif command -v sudo >/dev/null && sudo -n true 2>/dev/null && command -v apt-get >/dev/null; then sudo apt-get update -qq && sudo apt-get install -y -qq redis-server >/dev/null; \
		else echo "no redis-server and no root or apt-get: the Celery-mode tests will be skipped (install redis-server or set REDIS_SERVER)"; fi; \
	fi

## run: set up, check the bundled demo dataset, serve the app on http://$(HOST):$(PORT)
run: setup
	$(BIN)/cocoseg data validate demo
	$(BIN)/cocoseg serve --host $(HOST) --port $(PORT)

## test: set up with dev tools, lint, then the suite (browser and Celery-mode tests included) without the
## extended scenarios, which make test-all adds (pyproject [tool.pytest] markers say what they are)
test: setup-dev redis lint
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m "not extended"

## test-all: everything make test runs, and the extended scenarios: killed Celery workers, Celery training,
## restarts, cluster faults, every architecture's overfit check, the benchmark scripts run whole
test-all: setup-dev redis lint
	$(BIN)/python -m pytest $(PYTEST_WORKERS)

## lint: ruff (lint and format check, pyproject [tool.ruff]) and the import contract (pyproject [tool.importlinter])
lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache

## format: apply ruff's formatter and its safe fixes
format: setup-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## test-fast: the unit tests only (no browser, nothing marked slow): a few minutes, for iteration
test-fast: setup-dev
	$(BIN)/python -m pytest $(PYTEST_WORKERS) -m "not browser and not slow" -q

## test-browser-slow: the browser tests on one CPU core (taskset), as on a slow or busy machine
test-browser-slow: setup-dev redis
	taskset -c 0 $(BIN)/python -m pytest -m browser

## doctor: the CPU, the GPUs, what ONNX Runtime and TensorFlow can use, and how to enable the rest
doctor: setup
	$(BIN)/cocoseg doctor

## validate-demo / stats-demo: the CLI on the bundled dataset
validate-demo: setup
	$(BIN)/cocoseg data validate demo

stats-demo: setup
	$(BIN)/cocoseg data stats demo

## benchmark: COCO-train-scale statistics vs pycocotools (several minutes, ~3 GB RAM)
benchmark: setup
	$(BIN)/python benchmarks/coco_scale.py

## benchmark-input: writer scaling and tf.data throughput vs UNet training (a few minutes)
benchmark-input: setup
	$(BIN)/python benchmarks/input_pipeline.py

## benchmark-training: training images/s per architecture vs the machine's matmul rate
benchmark-training: setup
	$(BIN)/python benchmarks/training_throughput.py

## benchmark-inference: Keras vs tf.function vs ORT FP32/INT8 per architecture, end-to-end latency (~8 minutes)
benchmark-inference: setup
	$(BIN)/python -m benchmarks.inference

## benchmark-gpu: ORT CUDA (IO binding) vs TensorFlow on the GPU, FP32/FP16; skips without a GPU
benchmark-gpu: setup
	$(BIN)/python -m benchmarks.gpu

## clean: remove the virtualenv and caches (the workspace is kept)
clean:
	rm -rf $(VENV) node_modules .pytest_cache .hypothesis *.egg-info

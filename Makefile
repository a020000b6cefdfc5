# graphrec: two commands on a fresh machine (Python 3.11, gcc, cmake).
#   make demo   set everything up, run the main job on the shipped example model
#   make test   set everything up, run ruff, mypy and the whole test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
DEPS   := $(VENV)/.deps-stamp
BUILT  := $(VENV)/.built-stamp
EXAMPLE ?= examples/models/tiny_convnet.onnx

.PHONY: all venv install sysdeps demo test lint typecheck pytest bench fuzz clean

all: install

$(DEPS): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	# CPU build of torch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install torch==2.13.0
	$(BIN)/python -m pip install "scikit-build-core>=0.10" "pybind11>=2.13" ninja
	touch $@

venv: $(DEPS)

$(BUILT): $(DEPS) CMakeLists.txt $(wildcard csrc/*.cpp csrc/*.hpp)
	$(BIN)/python -m pip install --no-build-isolation -e ".[dev,runtimes]"
	touch $@

install: $(BUILT)

demo: install
	$(BIN)/graphrec inspect $(EXAMPLE)
	# rank every deployment choice with the shipped recommender, then measure the top 3
	# on this machine with the real runtimes (predicted vs measured side by side)
	$(BIN)/graphrec recommend $(EXAMPLE) --device auto --verify 3

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

# Debian packages the tests need (.ci/apt-packages.txt)
sysdeps:
	bash .ci/sysdeps.sh

pytest: install sysdeps
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: install
	$(BIN)/python benchmarks/bench_parse.py

fuzz:
	bash tests/fuzz/run_fuzz.sh $(or $(SECONDS),60)

clean:
	rm -rf build $(VENV)/.built-stamp

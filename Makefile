# The two commands of the README. Each sets up what it needs on a fresh machine.
#   make demo  - runtime-only venv (no torch), denoise the bundled sample photos
#   make test  - full dev venv (torch CPU wheel first), run the whole pytest suite
PYTHON ?= python3
DEMO_VENV := .venv-demo
DEV_VENV := .venv
# torch is pinned and installed before anything that depends on it: the CPU wheel, never CUDA.
TORCH := torch==2.13.0

.PHONY: demo test lint clean arm64-check

$(DEMO_VENV)/.stamp: pyproject.toml $(wildcard edge_ae/*.py edge_ae/*/*.py exported/*)
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEMO_VENV)/bin/python -m pip install --quiet .
	touch $@

demo: $(DEMO_VENV)/.stamp
	$(DEMO_VENV)/bin/edge-ae denoise samples/noisy -o demo-output/denoised --compare demo-output/before-after --overwrite
	@echo "cleaned images:           $(CURDIR)/demo-output/denoised"
	@echo "before | after pictures:  $(CURDIR)/demo-output/before-after"

$(DEV_VENV)/.stamp: pyproject.toml
	$(PYTHON) -m venv $(DEV_VENV)
	$(DEV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEV_VENV)/bin/python -m pip install --quiet $(TORCH)
	$(DEV_VENV)/bin/python -m pip install --quiet -e ".[train,dev,bench,ray]"
	touch $@

test: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/python -m pytest -q

# Every shipped model on an emulated aarch64 Debian root (qemu-user, cortex-a72 and -a76), compared
# with this host's outputs. Needs root and minutes; not part of `make test` (docs/RASPBERRY_PI.md).
arm64-check: $(DEV_VENV)/.stamp
	HOST_PY=$(CURDIR)/$(DEV_VENV)/bin/python tools/arm64_check.sh

lint: $(DEV_VENV)/.stamp
	$(DEV_VENV)/bin/python -m ruff check .
	$(DEV_VENV)/bin/python -m mypy

clean:
	rm -rf $(DEMO_VENV) $(DEV_VENV) demo-output build *.egg-info

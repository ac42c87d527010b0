# `make demo` and `make test` are the two commands of the README's quick start: each one
# creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast lint format clean bench screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# A CPU build of torch when none is installed; GPU servers keep their own CUDA build.
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/pip install --quiet "torch==2.13.0" || $(BIN)/pip install --quiet torch
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

# In a terminal: the wizard, opened on the demo preset (Ctrl+L launches it). Without one (CI,
# a pipe): the same demo trained headless, then base vs fine-tuned on held-out words.
demo: $(STAMP)
	@if [ -t 0 ] && [ -t 1 ]; then $(BIN)/tuiwiz --preset demo; else $(BIN)/tuiwiz demo; fi

screenshots: $(STAMP)
	$(BIN)/python tools/screenshots.py
	$(BIN)/python tools/browser_screenshots.py  # needs chromium (apt-get install chromium)

# The whole suite (real QLoRA trainings of the demo model included), on every core (at most 4
# workers; a test module's tests stay on one worker, so its shared runs are trained once); the
# 15 slowest tests are printed, so that the next slowdown shows.
PYTEST_WORKERS := -n auto --maxprocesses=4 --dist loadscope
test: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) --durations=15

# The edit loop: everything but the tests that train (pytest -m e2e runs those).
test-fast: $(STAMP)
	$(BIN)/python -m pytest -q $(PYTEST_WORKERS) -m "not e2e" --durations=10

lint: $(STAMP)
	$(BIN)/ruff check tuiwiz tests bench tools
	$(BIN)/ruff format --check tuiwiz tests bench tools
	$(BIN)/vulture  # dead code ([tool.vulture] in pyproject.toml)

format: $(STAMP)
	$(BIN)/ruff format tuiwiz tests bench tools
	$(BIN)/ruff check --fix tuiwiz tests bench tools

bench: $(STAMP)
	$(BIN)/python bench/engine_overhead.py
	$(BIN)/python bench/data_prep.py
	$(BIN)/python bench/estimate_speed.py
	$(BIN)/python bench/startup.py
	$(BIN)/python bench/import_compare_speed.py
	$(BIN)/python bench/gguf_export.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

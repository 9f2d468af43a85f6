# One command sets up and runs the web UI; one sets up and runs the tests. Both reuse .venv when present.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PORT ?= 7860
HOST ?= 127.0.0.1

.PHONY: run test test-all lint install chromium models bench clean-venv

run: $(STAMP)
	$(VENV)/bin/verify app --host $(HOST) --port $(PORT)

test: $(STAMP) chromium
	$(PY) -m ruff check .
	$(VENV)/bin/lint-imports
	$(PY) -m pytest --durations=25

test-all: $(STAMP) chromium
	$(PY) -m pytest -m "not gpu"

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall only when the project's dependencies change.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[app,train,export,test]'
	touch $(STAMP)

# Debian's Chromium for the browser tests (never a downloaded browser build).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium chromium-driver >/dev/null; \
	fi

# Retrain the bundled signature models on synthetic data (2 CPU cores: about 3 hours from scratch, see README).
models: $(STAMP)
	$(PY) -m training.make_models --out assets/models
	$(PY) -m training.make_hog_model

bench: $(STAMP)
	$(PY) -m bench

clean-venv:
	rm -rf $(VENV)

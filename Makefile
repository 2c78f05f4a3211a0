# Forecast Studio: `make run` opens the studio, `make test` runs the whole suite, `make bench` the benchmarks.
# Every target sets up .venv first, so each works on a fresh machine.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# The stamp files change when the requirement files do, so edited requirements reinstall.
APP_STAMP := $(VENV)/.app-installed
TEST_STAMP := $(VENV)/.test-installed

.PHONY: run test test-fast bench setup setup-test browser clean

run: $(APP_STAMP)
	$(PY) -m studio

test: $(TEST_STAMP) browser
	$(PY) -m pytest -p no:cacheprovider tests

test-fast: $(TEST_STAMP)
	$(PY) -m pytest -p no:cacheprovider -m "not slow and not browser" tests

bench: $(TEST_STAMP)
	$(PY) -m bench

setup: $(APP_STAMP)
setup-test: $(TEST_STAMP)

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(APP_STAMP): requirements.txt $(VENV)/bin/python
	$(PIP) install -q -r requirements.txt
	# tf_keras (Keras 2) gives the fused LSTM op on export; --no-deps keeps it from pulling a second TensorFlow.
	$(PIP) install -q --no-deps "tf_keras==2.21.0"
	touch $@

$(TEST_STAMP): requirements-dev.txt $(APP_STAMP)
	$(PIP) install -q -r requirements-dev.txt
	touch $@

# Debian's Chromium for the browser tests; installed when missing and we are root. Otherwise the browser
# tests skip with a printed reason (and fail under CI=true, see tests/conftest.py).
browser:
	@if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing Debian's chromium and chromium-driver for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	      || echo "Could not install chromium; browser tests will skip (or fail under CI)"; \
	  else echo "chromium/chromedriver missing and not root: browser tests will skip (fail under CI)"; fi; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache

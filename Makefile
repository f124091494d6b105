# Two entry points do all set-up on a fresh Linux machine with Python 3.11: `make demo` and `make test`.
# Both create .venv if missing and install the pinned set once; running them again reuses it.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
EXTRAS ?= dev,label
MONAILABEL := monailabel==0.8.5 pydicom-seg==0.4.1
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | cksum | cut -d' ' -f1)-$(EXTRAS)
PYTEST_ARGS ?=

.PHONY: setup demo test lint lock serve clean-outputs help

help:
	@echo "make demo   set up, generate every bundle's sample, train -> evaluate -> infer each on a short schedule"
	@echo "make test   set up, ruff check + ruff format --check, then the test suite (every bundle + unit tests)"
	@echo "make lint   ruff over common/, tests/, tools/, benchmarks/, apps/"
	@echo "make serve  MONAI Label on 127.0.0.1:$(PORT) serving every trained bundle from a sample datastore (after make demo)"

$(STAMP): pyproject.toml constraints.txt
	@start=$$(date +%s); \
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else "Python 3.11 is required (found " + sys.version.split()[0] + "); set PYTHON=python3.11")' && \
	{ test -x $(PY) || $(PYTHON) -m venv $(VENV); } && \
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(EXTRAS)]" && \
	{ [[ ",$(EXTRAS)," != *,label,* ]] || $(PY) -m pip install --quiet --no-deps $(MONAILABEL); } && \
	rm -f $(VENV)/.installed-* && touch $@ && \
	echo "[setup] environment ready in $$(( $$(date +%s) - start )) s"

setup: $(STAMP)

demo: setup
	@start=$$(date +%s); $(PY) tools/demo.py; status=$$?; \
	echo "[demo] wall time $$(( $$(date +%s) - start )) s"; exit $$status

LINT_PATHS := common tests tools benchmarks apps

test: setup
	@start=$$(date +%s); \
	$(VENV)/bin/ruff check $(LINT_PATHS) && $(VENV)/bin/ruff format --check $(LINT_PATHS) && echo "[test] ruff: clean" && \
	$(PY) -m pytest $(PYTEST_ARGS); status=$$?; \
	echo "[test] wall time $$(( $$(date +%s) - start )) s"; exit $$status

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS)
	$(VENV)/bin/ruff format --check $(LINT_PATHS)

PORT ?= 8000
DATASTORE ?= apps/monailabel/datastore
serve: setup
	$(PY) apps/monailabel/sample_datastore.py $(DATASTORE)
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/monailabel start_server --app apps/monailabel \
		--studies $(DATASTORE) --host 127.0.0.1 --port $(PORT) --conf models all

lock: setup
	{ head -2 constraints.txt; $(PY) -m pip freeze --exclude-editable; } > constraints.txt.new && mv constraints.txt.new constraints.txt

clean-outputs:
	rm -rf bundles/*/sample_data bundles/*/models bundles/*/eval bundles/*/runs bundles/*/outputs

# kuralab: two commands on a fresh machine -- `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test test-slow test-all bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Runs the quickstart study: data/runs/quickstart.nc and data/runs/quickstart.png
run: $(STAMP)
	$(VENV)/bin/kuralab run studies/quickstart.toml
	$(PY) analysis/quickstart.py data/runs/quickstart.nc --out data/runs/quickstart.png

# Default suite (under 10 minutes on 2 cores); slow theory checks are separate.
PYTEST := $(PY) -m pytest -n 2 --dist loadfile -q

test: $(STAMP)
	$(PYTEST) -m "not slow"

test-slow: $(STAMP)
	$(PYTEST) -m slow

test-all: test test-slow

BENCH_STAMP := $(VENV)/.bench-installed
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $(BENCH_STAMP)

# Benchmarks against NumPy, diffrax, the matvec/matmul roofline and peers (~12 min).
bench: $(BENCH_STAMP)
	$(PY) benchmarks/run.py --blas-threads 1

DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e ".[test,docs]"
	touch $(DOCS_STAMP)

# The documentation site, offline, into site/ (tutorials are executed: ~3 min on 2 cores).
docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis site

# leaklab entry points. `make run` and `make test` install what is missing first.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
APT_PACKAGES := valgrind heaptrack libjemalloc2 libjemalloc-dev librocksdb-dev golang-go g++ lsof slurmctld slurmd slurm-client munge chromium
SNAKEMAKE := $(VENV)/bin/snakemake
LEAKLAB := $(VENV)/bin/leaklab
SITE ?= site
# the lint snakemake --lint gives every rule, which leaklab answers with a pinned venv and Debian packages
CONDA_LINT := Specify a conda environment or container for each rule

.PHONY: help setup apt venv run test report figures-docs sweep accuracy nightly bench lint docs clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: apt venv  ## install system packages (as root) and the pinned virtualenv

apt:  ## install the Debian packages the profilers and experiments use, when missing
	@missing=$$(for p in $(APT_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

venv: $(VENV)/.installed  ## the virtualenv with pinned Python packages

$(VENV)/.installed: requirements.lock pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) not found: leaklab needs Python 3.11"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.lock
	$(VENV)/bin/pip install -q --no-deps -e .
	touch $@

run: setup  ## run the whole default pipeline (leaklab run: snakemake --cores 4)
	$(LEAKLAB) run

test: setup  ## run the whole test suite (real profilers, RocksDB, DuckDB, Snakemake)
	$(VENV)/bin/python -m pytest -v -rs --durations=15 tests

report: setup  ## the HTML report of the last run: results/report.html (opens offline, on the findings)
	$(LEAKLAB) report

accuracy: setup  ## the labelled accuracy benchmark into results/accuracy/ (first time: builds DuckDB 0.3.2 and 0.3.3, 25-40 min each)
	mkdir -p results/accuracy && $(VENV)/bin/python -m leaklab lock results/accuracy
	$(SNAKEMAKE) --cores 4 --snakefile Snakefile --configfile workflow/accuracy/config.yaml --directory results/accuracy accuracy

figures-docs: setup  ## the README's and the site's figures (docs/) from the last run's results/figures
	$(VENV)/bin/python -m leaklab.report.docs_figures --results results --out docs

nightly: setup  ## fresh measurements, appended to the history store; fails on regressions
	$(LEAKLAB) nightly

sweep: setup  ## the version sweep (config: version_sweep)
	$(LEAKLAB) sweep

bench: setup  ## sampler overhead and pipeline wall time (docs/benchmarks.md)
	$(LEAKLAB) bench

lint: setup  ## ruff on the Python code, snakemake --lint on the workflow (its advice to use conda aside)
	$(VENV)/bin/ruff check .
	@out=$$($(SNAKEMAKE) --lint 2>&1); status=$$?; \
	other=$$(printf '%s\n' "$$out" | grep -E '^ +\* ' | grep -vF '$(CONDA_LINT)'); \
	if [ -n "$$other" ] || { [ $$status -ne 0 ] && ! printf '%s\n' "$$out" | grep -q '^Lints for rule'; }; then \
	  printf '%s\n' "$$out"; echo "snakemake --lint: see above"; exit 1; \
	fi; echo "snakemake --lint: clean (apart from: $(CONDA_LINT))"

docs: setup  ## the documentation site (docs/, mkdocs.yml) built strictly into site/: a broken link fails
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir $(SITE)

clean:  ## remove generated results and the built site (keeps the virtualenv)
	rm -rf results .snakemake $(SITE)

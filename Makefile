# genetic_sizer — every target that needs the package installs it first (into .venv).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
BENCH  := $(VENV)/.installed-bench
WARM   := $(VENV)/.warmed
KERNELS := $(wildcard genetic_sizer/backtest/kernels/*.py) genetic_sizer/evolution/vary_nb.py genetic_sizer/cli/warm.py
CONFIG ?= configs/default.yaml
# Ray must stay on the loopback interface on these machines (see README, "Ray on loopback").
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0

.PHONY: help install test test-fast lint format evolve walkforward bench clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# The compiled kernels, warmed into their cache (genetic_sizer.backtest.kernels.CACHE_DIR, named by a hash of their
# sources): again whenever a kernel source or the warm-up (cli/warm.py) changes, so that no run starts by compiling.
# With two cores or more, a second process compiles them at the same time for each target of WARM_CPUS
# (NUMBA_CPU_NAME; plain x86-64 by default, into a directory of its own: a cluster compiled for one target, and the
# suite's instruction-set test); WARM_CPUS= (empty) skips it.
WARM_CPUS ?= $(if $(filter 1,$(shell nproc 2>/dev/null || echo 1)),,generic)
$(WARM): $(STAMP) $(KERNELS)
	$(PY) -m genetic_sizer.cli.warm --reference $(foreach c,$(WARM_CPUS),--cpu $(c))
	@touch $(WARM)

$(BENCH): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	@touch $(BENCH)

install: $(STAMP) $(WARM)  ## create .venv, install the package with dev extras, compile the kernels (no-op when current)

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file to a process so that its module fixtures (a
# Ray head, an evolved run) are built once; TEST_WORKERS=0 runs it in this process.
TEST_WORKERS ?= 2
PYTEST_N := $(if $(filter 0,$(TEST_WORKERS)),-p no:xdist,-n $(TEST_WORKERS) --dist loadfile)

test: install  ## run the whole test suite (TEST_WORKERS=2 processes; 0: one)
	$(PY) -m pytest -q $(PYTEST_N)

test-fast: install  ## the suite without tests marked slow or ray
	$(PY) -m pytest -q $(PYTEST_N) -m "not slow and not ray"

lint: install  ## ruff check + format check + the import-linter layer contracts of pyproject.toml
	$(VENV)/bin/ruff check genetic_sizer tests experiments
	$(VENV)/bin/ruff format --check genetic_sizer tests experiments
	$(VENV)/bin/lint-imports --no-cache

format: install  ## apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix genetic_sizer tests experiments
	$(VENV)/bin/ruff format genetic_sizer tests experiments

evolve: install  ## evolve on the embedded data, a final window held out: in-sample beside out-of-sample
	$(VENV)/bin/genetic-sizer evolve --config $(CONFIG)

# `make walkforward` runs configs/walkforward.yaml unless CONFIG is given (`make walkforward CONFIG=configs/robust.yaml`)
WALKFORWARD_CONFIG := $(if $(filter command line environment,$(origin CONFIG)),$(CONFIG),configs/walkforward.yaml)

walkforward: install  ## walk-forward evolution 2005-2022 beside refitted benchmarks (configs/walkforward.yaml; CONFIG=...)
	$(VENV)/bin/genetic-sizer walkforward --config $(WALKFORWARD_CONFIG)

# bench_simulate.py and bench_loop.py save their figures in experiments/results/ (bench_simulate.json, bench_loop.json);
# the last step copies them into README.md's speed table (measuring nothing; the other README figures are left alone).
bench: $(BENCH)  ## speed vs vectorbt, the evolution loop vs the kernel, search quality vs known optima, Ray scaling
	$(PY) experiments/bench_simulate.py
	$(PY) experiments/bench_loop.py
	$(PY) experiments/bench_loop.py --population 1000
	$(PY) experiments/bench_serial.py
	$(PY) experiments/bench_variation.py
	$(PY) experiments/bench_quality.py
	$(PY) experiments/bench_constraints.py
	$(PY) experiments/bench_frontier.py
	$(PY) experiments/bench_ray.py
	$(PY) experiments/readme_figures.py --bench --write

clean:  ## remove the virtualenv, caches and run outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache runs build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

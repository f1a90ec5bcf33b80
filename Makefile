# Two entry points: `make demo` and `make test`. Both create .venv if missing and are idempotent.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export ROS_AUTOMATIC_DISCOVERY_RANGE ?= LOCALHOST
# OpenMP threads that busy-wait fight each other on a small shared machine (5-20x slower frames, measured).
export OMP_WAIT_POLICY ?= PASSIVE
# The nuscenes-devkit oracle (its own venv: numpy < 2) for the metric tests and benchmark.
export OV_PANOPTIC_ORACLE_PYTHON ?= $(CURDIR)/.venv-oracle/bin/python

.PHONY: venv demo test test-fast bench mutation clean

include mk/oracle.mk
include mk/jazzy.mk

venv: $(STAMP)

$(STAMP): requirements.txt setup.py ov_panoptic_ros/bridge/_interleave.c ov_panoptic_ros/core/_projection.c ov_panoptic_ros/core/_clustering.c \
		ov_panoptic_ros/core/_boxes.c ov_panoptic_ros/core/_buffers.h ov_panoptic_ros/data/world/_raycast.c \
		$(wildcard mk/interfaces/*.sh mk/interfaces/*/*.txt mk/interfaces/*/*.xml mk/interfaces/*/msg/*.msg)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	mk/interfaces/build.sh $(VENV)  # tf2_msgs and vision_msgs: not among the ROS wheels
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: venv
	$(VENV)/bin/ov-panoptic demo --out runs/demo

# the whole suite on Kilted (.venv), then the ROS-layer tests again on Jazzy (.venv-jazzy, mk/jazzy.mk)
test: venv oracle-venv
	$(PY) -m pytest -q test
	$(MAKE) --no-print-directory test-jazzy

test-fast: venv oracle-venv
	$(PY) -m pytest -q -m "not slow" test

bench: venv oracle-venv
	$(VENV)/bin/ov-panoptic bench --out runs/bench/bench.json

# Mutation testing of the core, by hand (not in CI): mutmut over core/model/, eval/metrics.py and bridge/sync.py.
# setup.cfg [mutmut] names the files and the tests; each mutant runs only the selected tests that call the
# mutated function. Results are cached in mutants/: a plain `make mutation` tests only new or changed functions'
# mutants; MUTATE=sync|metrics|model (or mutant-name globs, e.g. 'ov_panoptic_ros.core.model.merge.*') reruns
# those in full, e.g. after adding tests. Survivors: `.venv/bin/mutmut results`, then `.venv/bin/mutmut show NAME`.
# Delete mutants/ after rebuilding a C extension or editing a preset (copied once). Avoid `mutmut
# print-time-estimates`: in 3.8.1 it empties the cached test mapping (rm -rf mutants/ then).
MUTATION_STAMP := $(VENV)/.mutation-installed
MUTATION_JOBS ?= 1
MUTATE ?=
MUTATION_GLOB_sync := ov_panoptic_ros.bridge.sync.*
MUTATION_GLOB_metrics := ov_panoptic_ros.eval.metrics.*
MUTATION_GLOB_model := ov_panoptic_ros.core.model.*

$(MUTATION_STAMP): $(STAMP) requirements-mutation.txt
	$(PY) -m pip install --quiet -r requirements-mutation.txt
	touch $(MUTATION_STAMP)

mutation: venv oracle-venv $(MUTATION_STAMP)
	OMP_NUM_THREADS=1 nice -n 10 $(VENV)/bin/mutmut run --max-children $(MUTATION_JOBS) \
		$(foreach t,$(MUTATE),'$(or $(MUTATION_GLOB_$(t)),$(t))')
	$(VENV)/bin/mutmut results

clean:
	rm -rf runs build install log .pytest_cache

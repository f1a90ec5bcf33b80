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

.PHONY: venv demo test test-fast bench clean

include mk/oracle.mk

venv: $(STAMP)

$(STAMP): requirements.txt setup.py ov_panoptic_ros/bridge/_interleave.c ov_panoptic_ros/core/_projection.c ov_panoptic_ros/core/_clustering.c \
		ov_panoptic_ros/core/_boxes.c ov_panoptic_ros/core/_buffers.h ov_panoptic_ros/data/world/_raycast.c
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: venv
	$(VENV)/bin/ov-panoptic demo --out runs/demo

test: venv oracle-venv
	$(PY) -m pytest -q test

test-fast: venv oracle-venv
	$(PY) -m pytest -q -m "not slow" test

bench: venv oracle-venv
	$(VENV)/bin/ov-panoptic bench --out runs/bench/bench.json

clean:
	rm -rf runs build install log .pytest_cache

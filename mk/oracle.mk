# Oracle venv for the metric tests and benchmark: nuscenes-devkit 1.2.0 pins numpy<2, so it lives in
# its own venv (.venv-oracle) and is called as a subprocess (ov_panoptic_ros/eval/devkit_oracle.py).
# Included by the main Makefile; idempotent through a stamp file, like `venv`.
PYTHON ?= python3.11
ORACLE_VENV := .venv-oracle
ORACLE_PY := $(ORACLE_VENV)/bin/python
ORACLE_STAMP := $(ORACLE_VENV)/.installed

.PHONY: oracle-venv

oracle-venv: $(ORACLE_STAMP)

$(ORACLE_STAMP): requirements-oracle.txt
	test -x $(ORACLE_PY) || $(PYTHON) -m venv $(ORACLE_VENV)
	$(ORACLE_PY) -m pip install --quiet -r requirements-oracle.txt
	$(ORACLE_PY) -c "from nuscenes.eval.panoptic.panoptic_seg_evaluator import PanopticEval"
	touch $(ORACLE_STAMP)

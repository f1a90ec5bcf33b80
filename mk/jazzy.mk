# ROS 2 Jazzy (the LTS: rclpy 7.1, Fast DDS 2) venv for the tests of the ROS layer, beside .venv's Kilted.
# Jazzy's wheels are ros-jazzy-<name> meta wheels pinning Jazzy's ros-<name> wheels (requirements-jazzy.txt, a
# pip freeze); tf2_msgs and vision_msgs are built into it from mk/interfaces/ with Jazzy's rosidl, as for .venv.
# The package is installed editable from the same source tree as .venv: both venvs are Python 3.11, so the C
# extensions built in place serve both. Included by the main Makefile; idempotent through a stamp file.
PYTHON ?= python3.11
JAZZY_VENV := .venv-jazzy
JAZZY_PY := $(JAZZY_VENV)/bin/python
JAZZY_STAMP := $(JAZZY_VENV)/.installed

# What runs against Jazzy: every test that drives rclpy or the ROS message classes. The node (test_node*.py:
# in process, its synchronization, vocabulary, bad input, TF and lifecycle, and the installed node as a
# process), DDS (the Fast DDS profile between two processes: Jazzy's Fast DDS 2 reads other variable names),
# the CLI over DDS (param/vocab, play), live replay (the node subprocess fed from a bag), the message
# conversions, markers and detections, and the TF buffer (tf2_msgs and vision_msgs as built with Jazzy's
# rosidl). Not here: tests without rclpy (test_diagnostics is NodeStats alone; test_launch, test_layers and
# test_package_xml read syntax trees and files; test_colcon is colcon and setuptools), the README's pip path
# (Kilted's .venv), and the nuscenes oracle and training tests.
JAZZY_TESTS := $(sort $(wildcard test/test_node*.py)) test/test_dds.py test/test_param_cli.py test/test_play.py \
	test/test_live_replay.py test/test_messages.py test/test_markers.py test/test_detections.py \
	test/test_transforms.py

.PHONY: jazzy-venv test-jazzy

jazzy-venv: $(JAZZY_STAMP)

$(JAZZY_STAMP): requirements-jazzy.txt setup.py $(wildcard ov_panoptic_ros/*/_*.[ch] ov_panoptic_ros/*/*/_*.[ch]) \
		$(wildcard mk/interfaces/*.sh mk/interfaces/*/*.txt mk/interfaces/*/*.xml mk/interfaces/*/msg/*.msg)
	test -x $(JAZZY_PY) || $(PYTHON) -m venv $(JAZZY_VENV)
	$(JAZZY_PY) -m pip install --quiet -r requirements-jazzy.txt
	mk/interfaces/build.sh $(JAZZY_VENV)
	$(JAZZY_PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(JAZZY_STAMP)

test-jazzy: jazzy-venv
	$(JAZZY_PY) -m pytest -q $(JAZZY_TESTS)

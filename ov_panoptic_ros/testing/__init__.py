"""Rigs for the tests and the benchmarks only: clients that play sensor drivers and probe the node (probe.py,
scene_msgs.py), and writers of small datasets in nuScenes' and SemanticKITTI's real on-disk formats
(nuscenes_tiny.py, semantickitti_tiny.py; bench/sources.py writes them at a real dataset's size).

Nothing in core, bridge, data, ros, eval or train imports this package (test/test_layers.py checks it).
"""

"""Rigs that play sensor drivers and probe the node: for the tests and the ROS benchmarks only.

Nothing in core, bridge, data, ros, eval or train imports this package (test/test_layers.py checks it).
"""

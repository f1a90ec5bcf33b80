"""Input data: the synthetic driving scene used by the demo, tests and benchmarks."""

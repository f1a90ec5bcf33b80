"""Benchmarks behind `ov-panoptic bench`; each module returns a JSON-able dict."""

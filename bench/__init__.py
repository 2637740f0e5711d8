"""Benchmarks: run as modules (``python -m bench.validate``), never as timed unit tests."""

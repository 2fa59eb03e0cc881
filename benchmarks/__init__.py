"""Benchmarks of the feature job; run them as modules, never as tests."""

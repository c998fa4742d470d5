"""Benchmarks of carpctl against ucarp and keepalived on the lab (not part of the tests)."""

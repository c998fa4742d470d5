"""The BSD backends against fake kernels.

A package, so that its conftest does not shadow tests/conftest.py for the
test modules that import from it.
"""

"""Fixtures for the lab tests: unique lab names, always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from labhelpers import lab_name

from carpctl.lab import Cluster, run_available, teardown
from carpctl.lab.netns import unavailable_reason


@pytest.fixture
def netns_ok() -> None:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def needs_run(netns_ok: None) -> None:
    if not run_available():
        pytest.skip("carpctl run is not available yet")


@pytest.fixture
def make_lab(netns_ok: None) -> Iterator[Callable[..., Cluster]]:
    """``make_lab(nodes=2, start=False, ...)`` -> a Cluster, removed after the test."""
    names: list[str] = []

    def make(**options: Any) -> Cluster:
        name = options.pop("name", None) or lab_name()
        names.append(name)
        return Cluster.up(name=name, **options)

    yield make
    for name in names:
        teardown(name)


@pytest.fixture
def lab_names(netns_ok: None) -> Iterator[list[str]]:
    """Names a test builds labs under by other means (a subprocess); removed afterwards."""
    names: list[str] = []
    yield names
    for name in names:
        teardown(name)

"""Labs for the embedded-engine tests: unique names, always torn down."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from itertools import count
from typing import Any

import pytest

from carpctl.lab import Cluster, teardown
from carpctl.lab.netns import unavailable_reason

_serial = count()


@pytest.fixture
def make_lab() -> Iterator[Callable[..., Cluster]]:
    """``make_lab(nodes=2, start=False, ...)`` -> a Cluster, removed after the test."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    names: list[str] = []

    def make(**options: Any) -> Cluster:
        name = f"e{os.getpid() % 100000}x{next(_serial)}"
        names.append(name)
        return Cluster.up(name=name, **options)

    yield make
    for name in names:
        teardown(name)

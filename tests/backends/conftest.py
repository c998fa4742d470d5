"""Fixtures for the BSD backends: fake kernels (tests/fakes) and backends on them."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fakekernel import FakeKernel


@pytest.fixture
def freebsd(tmp_path: Path) -> FakeKernel:
    return FakeKernel.create(tmp_path / "kernel", "freebsd")


@pytest.fixture
def openbsd(tmp_path: Path) -> FakeKernel:
    return FakeKernel.create(tmp_path / "kernel", "openbsd")


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path / "state"

"""The backends' public shape: the factory, the views, the protocol."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakekernel import FakeKernel

from carpctl.backends import (
    Applied,
    BackendError,
    FreeBSDBackend,
    KernelBackend,
    KernelView,
    OpenBSDBackend,
    find_tool,
    kernel_backend,
)


def test_the_factory_builds_either_kernel(
    freebsd: FakeKernel, openbsd: FakeKernel, tmp_path: Path
) -> None:
    made: list[KernelBackend] = [
        kernel_backend(
            "freebsd", tmp_path / "f", runner=freebsd.runner(), search_path=freebsd.search_path
        ),
        kernel_backend(
            "openbsd",
            tmp_path / "o",
            group="egress",
            runner=openbsd.runner(),
            search_path=openbsd.search_path,
        ),
    ]
    assert isinstance(made[0], FreeBSDBackend)
    assert isinstance(made[1], OpenBSDBackend)
    assert made[1].counter.target == "group egress"
    with pytest.raises(ValueError, match="no kernel backend 'embedded'"):
        kernel_backend("embedded", tmp_path)


def test_views_say_whose_demotion_is_whose() -> None:
    view = KernelView(total=297, carpctl=50)
    assert view.foreign == 247
    applied = Applied(desired=100, applied=55, total=255, steps=(55,), limit="0..255")
    assert (applied.complete, applied.shortfall, applied.foreign) == (False, 45, 200)


def test_tools_are_found_on_path_or_named(freebsd: FakeKernel, tmp_path: Path) -> None:
    assert find_tool("sysctl", search_path=freebsd.search_path) == str(freebsd.bin / "sysctl")
    assert find_tool("sysctl", "ifconfig", search_path=freebsd.search_path) == str(
        freebsd.bin / "ifconfig"
    )
    assert find_tool("sysctl", str(freebsd.bin / "sysctl")) == str(freebsd.bin / "sysctl")
    with pytest.raises(BackendError, match="not found on PATH"):
        find_tool("sysctl", search_path=str(tmp_path))

"""The core stays sans-I/O: no sockets, clocks, processes or event loops."""

from __future__ import annotations

import ast
from pathlib import Path

import carpctl.core

FORBIDDEN = {
    "asyncio",
    "datetime",
    "os",
    "pyroute2",
    "select",
    "selectors",
    "socket",
    "subprocess",
    "threading",
    "time",
}
CORE = Path(carpctl.core.__file__).parent


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_modules_import_no_io_clock_or_asyncio() -> None:
    modules = sorted(CORE.glob("*.py"))
    assert len(modules) >= 8
    offenders = {p.name: imported_modules(p) & FORBIDDEN for p in modules}
    assert {name: bad for name, bad in offenders.items() if bad} == {}


def test_the_check_itself_sees_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import time\nfrom asyncio import sleep\n")
    assert imported_modules(sample) & FORBIDDEN == {"time", "asyncio"}

"""The reactor's test kit: specs from tables, a driven Reactor, hooks, fake service tools."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from carpctl.reactor.executor import Reactor
from carpctl.reactor.spec import ServiceSpec, parse_services

HERE = Path(__file__).parent
HOOK = str(HERE / "hook.py")
TINY_HTTP = str(HERE / "tiny_http.py")
FAKE_TOOL = HERE / "fake_tool.py"
T = TypeVar("T")


def spec_of(**table: Any) -> ServiceSpec:
    """One ServiceSpec from a [[service]] table given as keywords (validated like a config)."""
    table.setdefault("name", "svc")
    (spec,) = parse_services(Path("carpctl.toml"), [table])
    return spec


def run(scenario: Awaitable[T], limit: float = 20.0) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(scenario, limit)

    return asyncio.run(bounded())


async def eventually(check: Callable[[], object], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, f"not within {within} s: {check}"
        await asyncio.sleep(0.02)


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    with contextlib.suppress(OSError):  # a zombie is gone for our purpose
        status = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return status == "Z"
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- hook commands ---------------------------------------------------------------


@dataclass
class Hooks:
    """Command services backed by hook.py; ``dir`` holds its log and behaviour files."""

    dir: Path

    def spec(self, name: str = "svc", status: bool = False, **table: Any) -> ServiceSpec:
        argv = [sys.executable, HOOK]
        table.setdefault("env", {})["HOOK_DIR"] = str(self.dir / name)
        (self.dir / name).mkdir(exist_ok=True)
        if status:
            table["status"] = [*argv, "status"]
        return spec_of(name=name, start=[*argv, "start"], stop=[*argv, "stop"], **table)

    def calls(self, name: str = "svc") -> list[dict[str, Any]]:
        path = self.dir / name / "log.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines()]

    def actions(self, name: str = "svc") -> list[str]:
        return [c["action"] for c in self.calls(name)]

    def behave(self, name: str, action: str, how: str, value: str = "") -> Path:
        path = self.dir / name / f"{action}.{how}"
        path.write_text(value)
        return path

    def running(self, name: str = "svc") -> bool:
        return (self.dir / name / "running").exists()


@pytest.fixture
def hooks(tmp_path: Path) -> Iterator[Hooks]:
    kit = Hooks(tmp_path / "hooks")
    kit.dir.mkdir()
    yield kit
    for child in kit.dir.glob("*/*.child"):  # what a hanging or daemonizing hook left
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(child.read_text()), signal.SIGKILL)


# -- a driven reactor ---------------------------------------------------------------


@dataclass
class Driven:
    reactor: Reactor
    failed: list[tuple[str, str]] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)

    def role(self, vhid: str, new: str, old: str = "BACKUP", at: float | None = None) -> None:
        self.reactor.role_changed(vhid, old, new, time.time() if at is None else at)

    def row(self, name: str = "svc") -> dict[str, Any]:
        return next(r for r in self.reactor.status() if r["name"] == name)


def driven(specs: list[ServiceSpec], **kwargs: Any) -> Driven:
    """A Reactor whose callbacks record into the returned Driven (start it in a loop)."""
    result: Driven
    kwargs.setdefault("reconcile_interval", 3600.0)
    result = Driven(
        Reactor(
            specs,
            on_start_failed=lambda spec, detail: result.failed.append((spec.name, detail)),
            on_recovered=lambda spec: result.recovered.append(spec.name),
            **kwargs,
        )
    )
    return result


# -- fake systemctl / service / rcctl ------------------------------------------------


@dataclass
class FakeTools:
    state: Path

    def calls(self) -> list[list[str]]:
        path = self.state / "calls.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []

    def running(self, name: str) -> bool:
        return (self.state / name).exists()

    def set_running(self, name: str, running: bool) -> None:
        if running:
            (self.state / name).touch()
        else:
            (self.state / name).unlink(missing_ok=True)

    def behave(self, name: str, how: str) -> None:
        (self.state / f"{name}.{how}").touch()


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeTools:
    """systemctl, service and rcctl first on PATH, all the same fake (see fake_tool.py)."""
    bin_dir, state = tmp_path / "bin", tmp_path / "tools"
    bin_dir.mkdir()
    state.mkdir()
    text = f"#!{sys.executable}\n" + FAKE_TOOL.read_text()
    for tool in ("systemctl", "service", "rcctl"):
        (bin_dir / tool).write_text(text)
        (bin_dir / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_STATE", str(state))
    assert shutil.which("systemctl") == str(bin_dir / "systemctl")
    return FakeTools(state)

"""command probes, both forms (asyncio for the runner, blocking): exit codes, timeouts, groups."""

from __future__ import annotations

import asyncio
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest

from carpctl.core.checkstate import Result
from carpctl.health.kinds import command
from carpctl.health.result import CheckResult
from carpctl.health.spec import CheckSpec, CommandParams

from .conftest import spec_of

Runner = Callable[[CheckSpec], CheckResult]


def run_async(spec: CheckSpec) -> CheckResult:
    assert isinstance(spec.params, CommandParams)
    return asyncio.run(command.run(spec, spec.params))


def run_blocking(spec: CheckSpec) -> CheckResult:
    assert isinstance(spec.params, CommandParams)
    return command.probe(spec, spec.params)


both = pytest.mark.parametrize("run", [run_async, run_blocking], ids=["asyncio", "blocking"])


def python(code: str, **table: object) -> CheckSpec:
    return spec_of(kind="command", argv=[sys.executable, "-c", code], **table)


@both
@pytest.mark.parametrize(
    ("code", "status", "detail"),
    [
        ("print('all good')", Result.OK, "all good"),
        ("pass", Result.OK, "exit 0"),
        ("print('lag 12 s'); raise SystemExit(1)", Result.WARNING, "exit 1: lag 12 s"),
        ("raise SystemExit(1)", Result.WARNING, "exit 1"),
        ("import sys; print('down', file=sys.stderr); raise SystemExit(2)", Result.FAILURE,
         "exit 2: down"),
        ("print('a'); print('last words'); print(); raise SystemExit(7)", Result.FAILURE,
         "exit 7: last words"),
        ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", Result.FAILURE, None),
    ],
)  # fmt: skip
def test_exit_status_decides(run: Runner, code: str, status: Result, detail: str | None) -> None:
    result = run(python(code))
    assert result.status is status
    if detail is not None:
        assert result.detail == detail
    else:
        assert result.detail == f"{sys.executable} was killed by SIGTERM"


@both
def test_not_found_and_not_executable(run: Runner, tmp_path: Path) -> None:
    missing = run(spec_of(kind="command", argv=["/nonexistent/check-thing", "--x"]))
    assert (missing.status, missing.detail) == (
        Result.FAILURE,
        "command not found: /nonexistent/check-thing",
    )
    script = tmp_path / "check.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    # (root may read anything, but execve still needs an execute bit)
    denied = run(spec_of(kind="command", argv=[str(script)]))
    assert (denied.status, denied.detail) == (
        Result.FAILURE,
        f"cannot execute {script}: permission denied",
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert run(spec_of(kind="command", argv=[str(script)])).status is Result.OK


SHOW = (
    "import os, sys; "
    "print(sys.argv[1:], os.environ['MODE'], os.environ['CARPCTL_CHECK'], os.getcwd())"
)


@both
def test_no_shell_and_the_environment(run: Runner) -> None:
    spec = spec_of(
        kind="command",
        name="db",
        argv=[sys.executable, "-c", SHOW, "$HOME; rm -rf /tmp/x", "*"],
        env={"MODE": "strict"},
    )
    result = run(spec)
    assert (result.status, result.detail) == (
        Result.OK,
        "['$HOME; rm -rf /tmp/x', '*'] strict db /",
    )


CHILD_AND_HANG = """
import os, subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(f"{os.getpid()} {child.pid}")
time.sleep(60)
"""


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(gone(p) for p in pids):
            return True
        time.sleep(0.02)
    return False


@both
def test_a_hanging_command_is_killed_with_its_children(run: Runner, tmp_path: Path) -> None:
    pids_file = tmp_path / "pids"
    spec = spec_of(
        kind="command",
        argv=[sys.executable, "-c", CHILD_AND_HANG, str(pids_file)],
        interval=5,
        timeout=1.0,
    )
    started = time.monotonic()
    result = run(spec)
    took = time.monotonic() - started
    assert (result.status, result.detail) == (
        Result.TIMEOUT,
        f"{sys.executable} still running after 1 s",
    )
    assert took < 3.5
    pids = [int(p) for p in pids_file.read_text().split()]
    assert len(pids) == 2
    assert wait_gone(pids), "the command or its child survived the timeout"


LEAVE_CHILD = """
import os, subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
open(sys.argv[1], "w").write(str(child.pid))
print("healthy")
"""


@both
def test_a_child_left_behind_is_killed_and_does_not_delay_the_result(
    run: Runner, tmp_path: Path
) -> None:
    """The child inherits stdout: waiting for EOF would wait for the timeout."""
    pid_file = tmp_path / "pid"
    spec = spec_of(
        kind="command", argv=[sys.executable, "-c", LEAVE_CHILD, str(pid_file)], timeout=5.0,
        interval=10,
    )  # fmt: skip
    started = time.monotonic()
    result = run(spec)
    assert (result.status, result.detail) == (Result.OK, "healthy")
    assert time.monotonic() - started < 4.0  # not the 5 s timeout
    assert wait_gone([int(pid_file.read_text())])

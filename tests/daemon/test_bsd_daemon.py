"""`carpctl run` with the freebsd/openbsd backends, against fake kernels.

The BSD kernels cannot run here: tests/fakes has small sysctl/ifconfig
programs that keep a kernel's state and reproduce its documented behaviour
(relative demotion writes, OpenBSD's carpdemote limits).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fakekernel import FakeKernel


class Daemon:
    def __init__(self, tmp_path: Path, kernel: FakeKernel, backend: str) -> None:
        self.kernel = kernel
        self.config = tmp_path / "carpctl.toml"
        self.config.write_text(
            "[carpctl]\n"
            f'backend = "{backend}"\n'
            f'state_dir = "{tmp_path / "state"}"\n'
            f'control_socket = "{tmp_path / "run" / "carpctl.sock"}"\n'
            'log_format = "json"\n'
        )
        self.log = tmp_path / "daemon.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "carpctl", "run", "-c", str(self.config)],
                env=self.kernel.env,
                stdout=out,
                stderr=out,
            )
        deadline = time.monotonic() + 15
        while self.ctl("status").returncode != 0:
            assert time.monotonic() < deadline, self.log.read_text()
            time.sleep(0.1)

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=10)

    def ctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "carpctl", "-c", str(self.config), *args],
            env=self.kernel.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )

    def status(self) -> dict[str, object]:
        result = self.ctl("status", "--json")
        assert result.returncode == 0, result.stderr
        parsed: dict[str, object] = json.loads(result.stdout)
        return parsed


@pytest.fixture(params=["freebsd", "openbsd"])
def daemon(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Daemon]:
    kernel = FakeKernel.create(tmp_path / "kernel", request.param)
    running = Daemon(tmp_path, kernel, request.param)
    yield running
    running.stop()


def foreign_write(kernel: FakeKernel, amount: int) -> None:
    """An operator's direct write, outside carpctl."""
    if kernel.state()["os"] == "freebsd":
        code, _, err = kernel.sysctl(f"net.inet.carp.demotion={amount}")
    else:
        code, _, err = kernel.ifconfig("-g", "carp", "carpdemote", str(amount))
    assert code == 0, err


def wait_kernel(kernel: FakeKernel, value: int) -> None:
    deadline = time.monotonic() + 10
    while kernel.demotion != value:
        assert time.monotonic() < deadline, f"kernel at {kernel.demotion}, expected {value}"
        time.sleep(0.05)


def test_demote_kill_9_restart_undemote_leaves_the_kernel_where_it_was(daemon: Daemon) -> None:
    kernel = daemon.kernel
    foreign_write(kernel, 20)  # not carpctl's, before it starts
    start = kernel.demotion
    daemon.start()
    assert daemon.ctl("demote", "+50", "--reason", "patching").returncode == 0
    wait_kernel(kernel, start + 50)
    daemon.kill9()
    daemon.start()
    status = daemon.status()
    assert status["kernel"] == {"total": start + 50, "carpctl": 50, "other": start}
    human = daemon.ctl("status").stdout
    assert f"not carpctl's {start}" in human
    assert daemon.ctl("demote", "-50").returncode == 0
    wait_kernel(kernel, start)
    time.sleep(0.3)
    assert kernel.demotion == start  # and nothing more happens


def test_a_direct_write_while_carpctl_runs_is_never_undone(daemon: Daemon) -> None:
    kernel = daemon.kernel
    daemon.start()
    assert daemon.ctl("maintenance", "on").returncode == 0
    wait_kernel(kernel, 240)
    foreign_write(kernel, 7)
    assert daemon.ctl("maintenance", "off").returncode == 0
    wait_kernel(kernel, 7)
    assert daemon.status()["kernel"] == {"total": 7, "carpctl": 0, "other": 7}


def test_vhid_lines_are_read_from_ifconfig(daemon: Daemon) -> None:
    daemon.start()
    vhids = daemon.status()["vhids"]
    assert isinstance(vhids, list)
    assert vhids
    assert {v["state"] for v in vhids} <= {"INIT", "BACKUP", "MASTER"}
    assert all("@" in v["name"] for v in vhids)


def test_vhid_tables_are_refused_with_a_kernel_backend(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        '[carpctl]\nbackend = "freebsd"\n[[vhid]]\nvhid = 1\ninterface = "em0"\n'
        'password = "x"\naddresses = ["198.51.100.1/24"]\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "carpctl", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={**os.environ},
    )
    assert result.returncode == 2
    assert "vhid: [[vhid]] is for the embedded backend" in result.stderr


def test_devd_events_and_kernel_polling_set_the_roles(daemon: Daemon) -> None:
    daemon.start()
    vhids = daemon.status()["vhids"]
    assert isinstance(vhids, list)
    name = vhids[0]["name"]
    vhid, interface = name.split("@")
    for state in ("BACKUP", "MASTER"):
        result = daemon.ctl("event", name, state)
        assert result.returncode == 0, result.stderr
    log = [json.loads(line) for line in daemon.log.read_text().splitlines() if line.startswith("{")]
    changes = [(r["vhid"], r["new"]) for r in log if r.get("event") == "state changed"]
    assert (name, "MASTER") in changes
    hostile = daemon.ctl("event", f"{vhid}@{interface};touch x", "MASTER")
    assert hostile.returncode == 2

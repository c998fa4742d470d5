"""carpctl.daemon.notify: sd_notify datagrams received on a real AF_UNIX socket.

The socket stands in for systemd's NOTIFY_SOCKET; WATCHDOG_USEC is set to
200 ms, so pings are due every 100 ms. Counts are asserted loosely: the
point is the cadence and that a stuck loop stops the pings, not timing.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carpctl.daemon.notify import (
    STATUS_MAX,
    Notifier,
    format_status,
    monotonic_usec,
    watchdog_interval,
)


class Receiver:
    """systemd's end: a datagram socket and a thread that timestamps what arrives."""

    def __init__(self, address: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(address)
        self.sock.settimeout(0.05)
        self.messages: list[tuple[float, dict[str, str]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            fields = dict(line.split("=", 1) for line in data.decode().split("\n"))
            self.messages.append((time.monotonic(), fields))

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return [fields for _, fields in self.messages]

    def pings(self) -> list[float]:
        return [at for at, fields in self.messages if fields.get("WATCHDOG") == "1"]


@pytest.fixture
def receiver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    path = tmp_path / "notify.sock"
    r = Receiver(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield r
    r.close()


@pytest.fixture
def watchdog_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")  # 200 ms: a ping every 100 ms
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid()))


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


# -- the messages --------------------------------------------------------------


def test_ready_status_reloading_stopping_arrive_as_systemd_reads_them(receiver: Receiver) -> None:
    notifier = Notifier.from_environment()
    assert notifier.enabled
    assert "NOTIFY_SOCKET" not in os.environ  # children must not notify in our name

    notifier.ready("BACKUP 1@eth0; demotion 240 (startup 240)")
    notifier.status("BACKUP 1@eth0; demotion 240 (startup 240)")  # unchanged: not sent
    notifier.status("MASTER 1@eth0; demotion 0")
    before = monotonic_usec()
    notifier.reloading()
    after = monotonic_usec()
    notifier.ready("MASTER 1@eth0; demotion 0")
    notifier.stopping()

    messages = receiver.wait_for(5)
    assert messages[0] == {
        "READY": "1",
        "STATUS": "BACKUP 1@eth0; demotion 240 (startup 240)",
    }
    assert messages[1] == {"STATUS": "MASTER 1@eth0; demotion 0"}
    assert messages[2]["RELOADING"] == "1"
    assert before <= int(messages[2]["MONOTONIC_USEC"]) <= after
    assert messages[3] == {"READY": "1", "STATUS": "MASTER 1@eth0; demotion 0"}
    assert messages[4] == {"STOPPING": "1", "STATUS": "stopping"}
    time.sleep(0.1)
    assert len(receiver.messages) == 5


def test_status_is_one_line_of_utf8(receiver: Receiver) -> None:
    notifier = Notifier.from_environment()
    notifier.status("MASTER 1@eth0;\ndemotion 0 (operator:café 0)")
    (message,) = receiver.wait_for(1)
    assert message == {"STATUS": "MASTER 1@eth0; demotion 0 (operator:café 0)"}


@pytest.mark.timeout(30)
def test_a_full_socket_drops_messages_and_never_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "full.sock"
    unread = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # bound, never read
    unread.bind(str(path))
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    try:
        notifier = Notifier.from_environment()
        assert notifier.enabled
        for i in range(3000):  # a blocking send would hang once the queue is full (~512)
            notifier.status(f"status {i}")
        assert unread.recv(100) == b"STATUS=status 0"  # what fitted was delivered
    finally:
        unread.close()


def test_abstract_socket_address(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"carpctl-notify-test-{os.getpid()}"
    r = Receiver("\0" + name)
    try:
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        Notifier.from_environment().ready("no vhids; demotion 0")
        assert r.wait_for(1) == [{"READY": "1", "STATUS": "no vhids; demotion 0"}]
    finally:
        r.close()


# -- outside systemd -----------------------------------------------------------


def test_without_notify_socket_everything_is_a_no_op(
    monkeypatch: pytest.MonkeyPatch, watchdog_env: None
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    assert notifier.watchdog_interval is None

    async def main() -> None:
        notifier.start_watchdog()
        notifier.start_status_updates(_status_source([]), interval=0.01)
        notifier.ready("x")
        notifier.status("y")
        notifier.reloading()
        notifier.stopping()
        assert notifier._tasks == []
        await notifier.close()

    run(main())


def test_an_unreachable_notify_socket_is_silent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens.sock"))
    notifier = Notifier.from_environment()
    assert not notifier.enabled
    notifier.ready("x")
    notifier.stopping()


# -- the watchdog --------------------------------------------------------------


def test_watchdog_pings_every_half_interval(receiver: Receiver, watchdog_env: None) -> None:
    notifier = Notifier.from_environment()
    assert notifier.watchdog_interval == pytest.approx(0.1)
    assert "WATCHDOG_USEC" not in os.environ

    async def main() -> None:
        notifier.start_watchdog()
        notifier.start_watchdog()  # a second call does not double the pings
        await asyncio.sleep(0.65)
        await notifier.close()

    run(main())
    time.sleep(0.1)
    pings = receiver.pings()
    assert 4 <= len(pings) <= 10  # ~7 expected: at 0, 0.1, ..., 0.6 s
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) < 0.35  # never near the 200 ms timeout... loosely
    count = len(pings)
    time.sleep(0.3)
    assert len(receiver.pings()) == count  # close() stopped them


def test_a_stuck_loop_stops_the_pings(receiver: Receiver, watchdog_env: None) -> None:
    notifier = Notifier.from_environment()

    async def main() -> None:
        notifier.start_watchdog()
        await asyncio.sleep(0.3)
        time.sleep(0.8)  # the loop is stuck: no task runs, no ping is sent
        await asyncio.sleep(0.3)
        await notifier.close()

    run(main())
    time.sleep(0.1)
    pings = receiver.pings()
    gaps = [b - a for a, b in itertools.pairwise(pings)]
    assert max(gaps) >= 0.6  # systemd (WatchdogSec=200ms) would have killed us here
    assert sum(1 for gap in gaps if gap < 0.3) >= 3  # regular before and after


def test_watchdog_for_another_process_is_ignored(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "200000")
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    notifier = Notifier.from_environment()
    assert notifier.enabled
    assert notifier.watchdog_interval is None

    async def main() -> None:
        notifier.start_watchdog()
        await asyncio.sleep(0.3)
        await notifier.close()

    run(main())
    assert receiver.pings() == []


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, None),
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "4242"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "4243"}, None),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "x"}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "-5"}, None),
        ({"WATCHDOG_USEC": "ten"}, None),
        ({"WATCHDOG_USEC": "1"}, 0.05),  # floored: never a busy loop
    ],
)
def test_watchdog_interval(environ: dict[str, str], expected: float | None) -> None:
    assert watchdog_interval(environ, pid=4242) == expected


# -- STATUS --------------------------------------------------------------------


def _vhid(name: str, state: str) -> dict[str, Any]:
    vhid, interface = name.split("@")
    return {"name": name, "vhid": int(vhid), "interface": interface, "state": state}


def _entry(name: str, amount: int) -> dict[str, Any]:
    return {"name": name, "source": name.split(":", maxsplit=1)[0], "amount": amount, "since": 0.0}


def _status(vhids: list[dict[str, Any]], entries: list[dict[str, Any]], **extra: Any) -> Any:
    total = sum(e["amount"] for e in entries)
    return {
        "backend": "embedded",
        "node": "a",
        "demotion": {"total": total, "entries": entries},
        "vhids": vhids,
        "checks": [],
        "drops": {},
        "kernel": None,
        **extra,
    }


def _status_source(lines: list[Any]) -> Any:
    async def source() -> Any:
        if not lines:
            raise RuntimeError("no status yet")
        return lines[0] if len(lines) == 1 else lines.pop(0)

    return source


def test_format_status_the_example_line() -> None:
    status = _status(
        [_vhid("1@eth0", "MASTER"), _vhid("2@eth0", "BACKUP")], [_entry("operator", 50)]
    )
    assert format_status(status) == "MASTER 1@eth0, BACKUP 2@eth0; demotion 50 (operator 50)"


def test_format_status_groups_by_state_and_lists_every_entry() -> None:
    status = _status(
        [
            _vhid("2@eth0", "BACKUP"),
            _vhid("1@eth0", "MASTER"),
            _vhid("3@eth1", "INIT"),
            _vhid("4@eth1", "MASTER"),
        ],
        [_entry("check:web", 50), _entry("ifdown:3@eth1", 240)],
    )
    assert format_status(status) == (
        "MASTER 1@eth0 4@eth1, BACKUP 2@eth0, INIT 3@eth1; "
        "demotion 290 (check:web 50, ifdown:3@eth1 240)"
    )


def test_format_status_without_vhids_or_demotion() -> None:
    assert format_status(_status([], [])) == "no vhids; demotion 0"


def test_format_status_shows_a_kernel_demotion_that_is_not_carpctls() -> None:
    status = _status([_vhid("1@em0", "MASTER")], [], backend="freebsd")
    status["kernel"] = {"total": 240, "carpctl": 0, "other": 240}
    assert format_status(status) == "MASTER 1@em0; demotion 0; kernel 240 (240 not carpctl's)"
    status["kernel"] = {"total": 0, "carpctl": 0, "other": 0}
    assert format_status(status) == "MASTER 1@em0; demotion 0"


def test_format_status_stays_one_bounded_line() -> None:
    vhids = [_vhid(f"{n}@bridge{n}", "BACKUP") for n in range(1, 120)]
    line = format_status(_status(vhids, [_entry("operator", 5)]))
    assert "\n" not in line
    assert len(line) == STATUS_MAX
    assert line.endswith("...")


def test_status_updates_follow_the_daemon(receiver: Receiver) -> None:
    notifier = Notifier.from_environment()
    backup = _status([_vhid("1@eth0", "BACKUP")], [])
    master = _status([_vhid("1@eth0", "MASTER")], [])
    lines = [backup, backup, backup, master]

    async def main() -> None:
        notifier.start_status_updates(_status_source(lines), interval=0.03)
        await asyncio.sleep(0.4)
        await notifier.close()

    run(main())
    statuses = [fields["STATUS"] for _, fields in receiver.messages]
    assert statuses == ["BACKUP 1@eth0; demotion 0", "MASTER 1@eth0; demotion 0"]

"""The control server over a real Unix socket: round trips, garbage, permissions, takeover."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from carpctl.control import client
from carpctl.control.protocol import MAX_REQUEST, ControlError, ErrorCode
from carpctl.control.server import ControlServer, SocketInUse
from carpctl.core.ledger import LedgerError

from .fakedaemon import FakeDaemon

STATUS = {"node": "node1"}


class Log:
    """Records what the server logs."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def log(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return log


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "run" / "carpctl.sock"


async def slow(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(1.5)
    return {"checks": []}


async def broken(args: dict[str, Any]) -> dict[str, Any]:
    raise RuntimeError("bug")


async def not_json(args: dict[str, Any]) -> dict[str, Any]:
    return {"when": object()}


@pytest.fixture
def daemon(path: Path) -> Iterator[FakeDaemon]:
    canned = {
        "status": STATUS,
        "demote": LedgerError("the operator share is 0: -5 would make it negative"),
        "maintenance": ControlError("maintenance is locked", ErrorCode.INVALID),
    }
    handlers = {"check": slow, "event": broken}
    with FakeDaemon(path, handlers, canned=canned, read_timeout=0.3, log=Log()) as fake:
        yield fake


def exchange(path: Path, payload: bytes, *, shut: bool = False) -> dict[str, Any] | None:
    """Send raw bytes; the reply object, or None when the server just closed."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        # The server answers an oversized request before reading all of it.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(payload)
        if shut:
            sock.shutdown(socket.SHUT_WR)
        data = b""
        while not data.endswith(b"\n"):
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    if not data:
        return None
    reply: dict[str, Any] = json.loads(data)
    return reply


def still_serving(path: Path) -> None:
    assert client.request(path, "status", {}) == STATUS


def test_round_trip_with_validated_arguments(daemon: FakeDaemon, path: Path) -> None:
    assert client.request(path, "status", {}) == STATUS
    assert daemon.requests == [("status", {})]
    raw = exchange(path, b'{"version": 1, "command": "status"}\n')
    assert raw == {"version": 1, "ok": True, "result": STATUS}


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"hello\n", "the request is not a JSON object on one line"),
        (b"\x00\xff\n", "the request is not a JSON object on one line"),
        (b'{"version": 7, "command": "status"}\n', "unsupported protocol version 7; expected 1"),
        (
            b'{"version": 1, "command": "reboot"}\n',
            "unknown command 'reboot'; expected one of status, demote, maintenance, check, "
            "event, reload",
        ),
        (
            b'{"version": 1, "command": "demote", "args": {"delta": "x"}}\n',
            "delta must be an integer within -1000..1000, got 'x'",
        ),
        (b"x" * (MAX_REQUEST + 10) + b"\n", f"the request is larger than {MAX_REQUEST} bytes"),
        (b"x" * (3 * MAX_REQUEST), f"the request is larger than {MAX_REQUEST} bytes"),
    ],
)
def test_every_malformed_request_gets_an_invalid_reply_and_serving_goes_on(
    daemon: FakeDaemon, path: Path, payload: bytes, message: str
) -> None:
    assert exchange(path, payload) == {"version": 1, "ok": False, "error": message, "code": 2}
    still_serving(path)
    assert [command for command, _ in daemon.requests] == ["status"]


def test_handler_errors_become_replies(daemon: FakeDaemon, path: Path) -> None:
    with pytest.raises(ControlError, match=r"^the operator share is 0: -5 would") as failed:
        client.request(path, "demote", {"delta": -5})
    assert failed.value.code == ErrorCode.FAILED
    with pytest.raises(ControlError, match=r"^maintenance is locked$") as invalid:
        client.request(path, "maintenance", {"on": True})
    assert invalid.value.code == ErrorCode.INVALID
    with pytest.raises(ControlError, match=r"^internal error in the daemon: RuntimeError$"):
        client.request(path, "event", {"vhid": 1, "interface": "lab0", "type": "MASTER"})
    logged = daemon.server._log.lines
    assert [(level, event) for level, event, _ in logged] == [
        ("exception", "control_handler_failed")
    ]
    still_serving(path)


def test_a_result_that_is_not_json_is_an_internal_error(path: Path) -> None:
    with (
        FakeDaemon(path, {"status": not_json}, log=Log()),
        pytest.raises(ControlError, match="internal error in the daemon: TypeError"),
    ):
        client.request(path, "status", {})


def test_a_known_command_without_a_handler_fails(path: Path) -> None:
    with FakeDaemon(path, canned={"status": STATUS}):
        with pytest.raises(ControlError, match="this daemon does not handle 'event'") as caught:
            client.request(path, "event", {"vhid": 1, "interface": "lab0", "type": "INIT"})
        assert caught.value.code == ErrorCode.FAILED


def test_silent_hasty_and_half_closed_clients(daemon: FakeDaemon, path: Path) -> None:
    # Connects and says nothing: answered after the read timeout, then dropped.
    assert exchange(path, b"") == {
        "version": 1,
        "ok": False,
        "error": "no request line within 0.3 seconds",
        "code": 2,
    }
    # Connects and hangs up at once, or in the middle of a line.
    for payload in (b"", b'{"version": 1, "comm'):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.connect(str(path))
            sock.sendall(payload)
    assert exchange(path, b"", shut=True) is None
    # Sends a request without its newline, then half-closes: still answered.
    reply = exchange(path, b'{"version": 1, "command": "status"}', shut=True)
    assert reply == {"version": 1, "ok": True, "result": STATUS}
    # Sends a request and leaves before the (slow) reply.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(b'{"version": 1, "command": "check", "args": {}}\n')
    still_serving(path)


def test_a_slow_request_does_not_hold_up_others(daemon: FakeDaemon, path: Path) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(path))
        sock.sendall(b'{"version": 1, "command": "check", "args": {"name": "web"}}\n')
        assert client.request(path, "status", {}, timeout=1.0) == STATUS
        sock.settimeout(5)
        assert json.loads(sock.recv(65536)) == {"version": 1, "ok": True, "result": {"checks": []}}


def test_socket_is_0600_in_a_new_0700_directory(daemon: FakeDaemon, path: Path) -> None:
    assert stat.S_ISSOCK(path.lstat().st_mode)
    assert stat.S_IMODE(path.lstat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_an_existing_directory_keeps_its_mode(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    with FakeDaemon(tmp_path / "c.sock", canned={"status": STATUS}):
        assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755
        assert stat.S_IMODE((tmp_path / "c.sock").stat().st_mode) == 0o600


def test_close_removes_the_socket_file(path: Path) -> None:
    with FakeDaemon(path, canned={"status": STATUS}):
        assert path.exists()
    assert not path.exists()


def test_a_stale_socket_is_replaced(path: Path) -> None:
    path.parent.mkdir(mode=0o700)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as crashed:
        crashed.bind(str(path))  # bound, then closed: what a killed daemon leaves
    with pytest.raises(ControlError, match="connection refused") as caught:
        client.request(path, "status", {})
    assert caught.value.code == ErrorCode.UNREACHABLE
    with FakeDaemon(path, canned={"status": STATUS}):
        still_serving(path)


def test_a_live_socket_is_refused_and_left_alone(daemon: FakeDaemon, path: Path) -> None:
    with pytest.raises(SocketInUse, match=f"another carpctl daemon is already serving {path}"):
        asyncio.run(ControlServer(path, {}).start())
    still_serving(path)


def test_a_file_that_is_not_a_socket_is_refused(tmp_path: Path) -> None:
    precious = tmp_path / "carpctl.sock"
    precious.write_text("data")
    with pytest.raises(SocketInUse, match="exists and is not a socket"):
        asyncio.run(ControlServer(precious, {}).start())
    assert precious.read_text() == "data"


def as_nobody(path: Path) -> tuple[str, Any]:
    """Connect and send a status request as uid/gid 65534; ("error", errno) or ("reply", obj)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                reply = exchange(path, b'{"version": 1, "command": "status"}\n')
                outcome: tuple[str, Any] = ("reply", reply)
            except OSError as error:
                outcome = ("error", error.errno)
            os.write(write_end, json.dumps(outcome).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    kind, value = json.loads(data)
    return kind, value


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become another user")
def test_other_users_are_refused() -> None:
    # tmp_path lives under a 0700 directory; nobody must be able to reach the socket's.
    with tempfile.TemporaryDirectory(prefix="carpctl-ctl-") as directory:
        Path(directory).chmod(0o755)
        path = Path(directory) / "carpctl.sock"
        log = Log()
        with FakeDaemon(path, canned={"status": STATUS}, log=log) as daemon:
            # The file mode alone keeps them out ...
            assert as_nobody(path) == ("error", 13)  # EACCES
            # ... and were it loosened, SO_PEERCRED still does.
            path.chmod(0o666)
            kind, reply = as_nobody(path)
            assert (kind, reply) == (
                "reply",
                {
                    "version": 1,
                    "ok": False,
                    "error": "permission denied: the control socket serves root only",
                    "code": 1,
                },
            )
            assert daemon.requests == []
            still_serving(path)
        ((level, event, fields),) = log.lines
        assert (level, event, fields["uid"], fields["suppressed"]) == (
            "warning",
            "control_refused",
            65534,
            0,
        )

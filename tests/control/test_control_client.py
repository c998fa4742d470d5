"""The client: finding the socket, and every way a daemon can be unreachable."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path
from typing import Any

import pytest

from carpctl.control import client
from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.daemon import config

from .fakedaemon import FakeDaemon


async def slow(args: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(1)
    return {"checks": []}


def test_the_socket_comes_from_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    named = tmp_path / "named.toml"
    named.write_text('[carpctl]\ncontrol_socket = "/run/x/named.sock"\n')
    assert client.socket_path(named) == Path("/run/x/named.sock")
    # No -c: the default config, and when there is none, the default socket.
    monkeypatch.setattr(config, "DEFAULT_PATH", tmp_path / "default.toml")
    assert client.socket_path(None) == Path("/run/carpctl/carpctl.sock")
    (tmp_path / "default.toml").write_text('[carpctl]\ncontrol_socket = "/run/y.sock"\n')
    assert client.socket_path(None) == Path("/run/y.sock")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "missing.toml: cannot read the config: No such file or directory"),
        ("[carpctl\n", "not valid TOML"),
        ("[carpctl]\ncontrol_socket = 1\n", "carpctl.control_socket: expected str, got 1"),
    ],
)
def test_an_unusable_config_is_code_2(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "missing.toml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ControlError) as caught:
        client.socket_path(path)
    assert caught.value.code == ErrorCode.INVALID
    assert message in str(caught.value)


def test_arguments_are_validated_before_connecting(tmp_path: Path) -> None:
    with pytest.raises(ControlError, match="delta must be an integer") as caught:
        client.request(tmp_path / "none.sock", "demote", {"delta": 5000})
    assert caught.value.code == ErrorCode.INVALID


def test_missing_socket_is_unreachable(tmp_path: Path) -> None:
    with pytest.raises(ControlError) as caught:
        client.request(tmp_path / "none.sock", "status", {})
    assert caught.value.code == ErrorCode.UNREACHABLE
    assert str(caught.value) == (
        f"the daemon is not reachable at {tmp_path / 'none.sock'}: "
        "there is no socket (is `carpctl run` running?)"
    )


def test_a_slow_daemon_times_out_as_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "slow.sock"
    with FakeDaemon(path, {"check": slow}), pytest.raises(ControlError) as caught:
        client.request(path, "check", {"name": None}, timeout=0.2)
    assert caught.value.code == ErrorCode.UNREACHABLE
    assert str(caught.value) == (
        f"the daemon is not reachable at {path}: no reply within 0.2 seconds"
    )


def test_a_daemon_that_hangs_up_without_reply_is_unreachable(tmp_path: Path) -> None:
    path = tmp_path / "mute.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        with pytest.raises(ControlError, match=r"no reply within 0\.2 seconds"):
            client.request(path, "status", {}, timeout=0.2)  # accepted by the kernel only
    path.unlink()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen(1)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            conn, _ = listener.accept()
            conn.close()
            os._exit(0)
        with pytest.raises(ControlError, match="it hung up without a reply") as caught:
            client.request(path, "status", {})
        os.waitpid(pid, 0)
    assert caught.value.code == ErrorCode.UNREACHABLE

"""The CLI's side of the control socket: one request, one reply.

Every failure is a ``ControlError``: code 3 when no daemon answers (no
socket, refused, permission denied, timeout, hung up without a reply),
code 2 for an invalid request or an unusable config, otherwise the code of
the daemon's error reply.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from pathlib import Path
from typing import Any

from carpctl.control import protocol
from carpctl.control.protocol import ControlError, ErrorCode

DEFAULT_TIMEOUT = 5.0  # seconds, for the whole exchange


def socket_path(config: Path | str | None) -> Path:
    """The control socket named by ``config`` (``-c FILE``), else by the default config.

    When no ``-c`` was given and the default config does not exist, the
    default socket path. An unreadable or invalid config is ControlError
    code 2 with the loader's sentence.
    """
    from carpctl.daemon.config import DEFAULT_PATH, CarpctlSection, ConfigError, load

    if config is None and not DEFAULT_PATH.exists():
        return CarpctlSection.control_socket
    try:
        return load(DEFAULT_PATH if config is None else config).carpctl.control_socket
    except ConfigError as error:
        raise ControlError(str(error), ErrorCode.INVALID) from None


def _reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "there is no socket (is `carpctl run` running?)"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused (the daemon is not running)"
    if isinstance(error, PermissionError):
        return "permission denied (the control socket serves root only)"
    if isinstance(error, TimeoutError):
        return "it did not answer in time"
    return (error.strerror or str(error)).lower()


def unreachable(path: Path | str, reason: str) -> ControlError:
    return ControlError(f"the daemon is not reachable at {path}: {reason}", ErrorCode.UNREACHABLE)


def _read_line(sock: socket.socket, deadline: float) -> bytes | None:
    """The first line the daemon sends, None when it hangs up before one."""
    data = b""
    while b"\n" not in data:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        data += chunk
        if len(data) > protocol.MAX_REPLY:
            raise ControlError(f"the daemon's reply is larger than {protocol.MAX_REPLY} bytes")
    return data[: data.index(b"\n") + 1]


def request(
    path: Path | str, command: str, args: dict[str, Any], timeout: float = DEFAULT_TIMEOUT
) -> dict[str, Any]:
    """Send ``command`` with ``args`` to the daemon at ``path``; its result object."""
    line = protocol.encode_request(command, args)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(os.fspath(path))
        except OSError as error:
            raise unreachable(path, _reason(error)) from None
        with contextlib.suppress(OSError):  # a refused peer is answered before being read
            sock.sendall(line)
        try:
            reply = _read_line(sock, deadline)
        except TimeoutError:
            raise unreachable(path, f"no reply within {timeout:g} seconds") from None
        except OSError as error:
            raise unreachable(path, _reason(error)) from None
    if reply is None:
        raise unreachable(path, "it hung up without a reply")
    return protocol.decode_reply(reply)

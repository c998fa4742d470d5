"""The daemon's side of the control socket.

One connection carries one request and one reply. The socket file is
created 0600 (under a umask, never chmod-ed afterwards) in a directory
created 0700 when missing; only root and the daemon's own user are served
(SO_PEERCRED). A socket file left by a crashed daemon is replaced; one
that still answers belongs to a running daemon and is refused.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import structlog

from carpctl.control import protocol
from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.core.ledger import LedgerError
from carpctl.daemon.logs import RateLimiter

Handler = Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]]
READ_TIMEOUT = 5.0  # seconds a client has to send its request line
_UCRED = struct.Struct("3i")  # pid, uid, gid


class SocketInUse(OSError):
    """Another daemon answers on the control socket, or the path is not a socket."""


def peer_credentials(sock: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a Unix socket."""
    pid, uid, gid = _UCRED.unpack(
        sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    )
    return pid, uid, gid


def _answers(path: Path) -> bool:
    """True when something accepts connections on the socket at ``path``."""
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError as error:
        if error.errno == errno.EAGAIN:  # the listener's backlog is full: it is alive
            return True
        raise
    finally:
        probe.close()
    return True


def bind_socket(path: Path) -> socket.socket:
    """A listening Unix socket at ``path``, mode 0600, replacing a stale one."""
    if not path.parent.is_dir():
        old = os.umask(0o077)
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        finally:
            os.umask(old)
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        pass
    else:
        if not stat.S_ISSOCK(mode):
            raise SocketInUse(
                errno.EEXIST, f"{path} exists and is not a socket; remove it or choose another path"
            )
        if _answers(path):
            raise SocketInUse(errno.EADDRINUSE, f"another carpctl daemon is already serving {path}")
        path.unlink(missing_ok=True)  # left behind by a daemon that crashed
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(str(path))
        finally:
            os.umask(old)
        sock.listen(64)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


class ControlServer:
    """Serve ``handlers`` (command -> async function of the validated args).

    A handler returns the result object, or raises ``ControlError`` (its
    message and code go to the client) or ``LedgerError`` (code 1). Any
    other exception is logged and answered as an internal error; the
    server keeps serving.
    """

    def __init__(
        self,
        path: Path | str,
        handlers: Mapping[str, Handler],
        *,
        read_timeout: float = READ_TIMEOUT,
        log: Any = None,
    ) -> None:
        self.path = Path(path)
        self.handlers = dict(handlers)
        self.read_timeout = read_timeout
        self.allowed_uids = frozenset({0, os.geteuid()})
        self._log = log if log is not None else structlog.get_logger().bind(control=str(path))
        self._limiter = RateLimiter()
        self._server: asyncio.Server | None = None
        self._inode: int | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Bind and listen; SocketInUse or OSError when that is impossible."""
        sock = bind_socket(self.path)
        self._inode = os.stat(self.path).st_ino
        try:
            self._server = await asyncio.start_unix_server(
                self._connected, sock=sock, limit=protocol.MAX_REQUEST
            )
        except BaseException:
            sock.close()
            self.path.unlink(missing_ok=True)
            raise

    async def close(self) -> None:
        """Stop listening, drop open connections, remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None
        try:  # only our own file: a newer daemon may have replaced it
            if os.stat(self.path).st_ino == self._inode:
                self.path.unlink()
        except FileNotFoundError:
            pass

    async def __aenter__(self) -> ControlServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- one connection -------------------------------------------------------

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            reply = await self._serve(reader, writer)
            if reply is not None:
                writer.write(reply)
                await asyncio.wait_for(writer.drain(), self.read_timeout)
        except (OSError, TimeoutError):
            pass  # the client went away or stopped reading: nothing to answer
        finally:
            writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bytes | None:
        sock = writer.get_extra_info("socket")
        pid, uid, _ = peer_credentials(sock) if sock is not None else (0, -1, 0)
        if uid not in self.allowed_uids:
            allowed, suppressed = self._limiter.allow(f"uid:{uid}")
            if allowed:
                self._log.warning("control_refused", pid=pid, uid=uid, suppressed=suppressed)
            return protocol.encode_error(
                "permission denied: the control socket serves root only", ErrorCode.FAILED
            )
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), self.read_timeout)
        except asyncio.IncompleteReadError as eof:
            if not eof.partial.strip():
                return None  # connected and closed without a word
            line = eof.partial  # the client half-closed instead of ending the line
        except asyncio.LimitOverrunError:
            return protocol.encode_error(
                f"the request is larger than {protocol.MAX_REQUEST} bytes", ErrorCode.INVALID
            )
        except TimeoutError:
            return protocol.encode_error(
                f"no request line within {self.read_timeout:g} seconds", ErrorCode.INVALID
            )
        return await self._answer(line, pid, uid)

    async def _answer(self, line: bytes, pid: int, uid: int) -> bytes:
        try:
            request = protocol.decode_request(line)
            handler = self.handlers.get(request.command)
            if handler is None:
                raise ControlError(f"this daemon does not handle {request.command!r}")
            result = await handler(request.args)
            return protocol.encode_result(result)
        except ControlError as error:
            return protocol.encode_error(str(error), _reply_code(error.code))
        except LedgerError as error:
            return protocol.encode_error(str(error), ErrorCode.FAILED)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._log.exception("control_handler_failed", pid=pid, uid=uid)
            return protocol.encode_error(
                f"internal error in the daemon: {type(error).__name__}", ErrorCode.FAILED
            )


def _reply_code(code: ErrorCode) -> ErrorCode:
    return code if code in (ErrorCode.FAILED, ErrorCode.INVALID) else ErrorCode.FAILED

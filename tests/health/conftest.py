"""Real things for the health checks to probe: an HTTP server, named processes, listeners."""

from __future__ import annotations

import contextlib
import http.server
import os
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from carpctl.health.spec import CheckSpec, parse_checks

CONFIG = Path("carpctl.toml")


def spec_of(**table: Any) -> CheckSpec:
    """One CheckSpec from a [[check]] table given as keywords (validated like a config)."""
    table.setdefault("name", "t")
    (spec,) = parse_checks(CONFIG, [table])
    return spec


# -- an HTTP server whose behaviour the test changes ---------------------------


@dataclass
class Behaviour:
    status: int = 200
    body: bytes = b"ok\n"
    mode: str = "normal"  # normal | hang (no answer) | trickle (headers, slowly, forever)
    requests: int = 0
    stop: threading.Event = field(default_factory=threading.Event)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._answer(with_body=True)

    def do_HEAD(self) -> None:
        self._answer(with_body=False)

    def _answer(self, with_body: bool) -> None:
        behaviour = self.server.behaviour
        behaviour.requests += 1
        if self.path.startswith("/hang") or behaviour.mode == "hang":
            behaviour.stop.wait()
            return
        if self.path.startswith("/trickle") or behaviour.mode == "trickle":
            # Headers one byte at a time, forever: every read succeeds within
            # any per-read timeout, so the client never gives up on its own.
            with contextlib.suppress(OSError):
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                while not behaviour.stop.wait(0.05):
                    self.wfile.write(b"X")
                    self.wfile.flush()
            return
        if self.path.startswith("/slowbody"):
            # Headers at once, then the body a byte every 50 ms.
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            with contextlib.suppress(OSError):
                while not behaviour.stop.wait(0.05):
                    self.wfile.write(b"x")
                    self.wfile.flush()
            return
        if self.path.startswith("/stallbody"):
            self.send_response(200)
            self.send_header("Content-Length", "10")
            self.end_headers()
            self.wfile.write(b"ok")
            self.wfile.flush()
            behaviour.stop.wait()
            return
        if self.path.startswith("/redirect"):
            self.send_response(301)
            self.send_header("Location", "/")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(behaviour.status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(behaviour.body)))
        self.end_headers()
        if with_body:
            self.wfile.write(behaviour.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256
    behaviour: Behaviour


@dataclass
class HttpServer:
    url: str
    behaviour: Behaviour


@pytest.fixture
def http_server() -> Iterator[HttpServer]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.behaviour = Behaviour()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield HttpServer(f"http://{host!s}:{port}", server.behaviour)
    finally:
        server.behaviour.stop.set()
        server.shutdown()
        server.server_close()


# -- TCP listeners and free ports ----------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A TCP listener on 127.0.0.1 (ephemeral port) that accepts in a thread."""
    sock = socket.create_server(("127.0.0.1", 0), backlog=64)
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
                conn.close()
            except TimeoutError:
                continue
            except OSError:
                return

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield sock
    stop.set()
    thread.join(2)
    sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 nothing listens on (just released by us)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# -- processes named like the real targets -------------------------------------

MIMIC = textwrap.dedent(
    """
    import ctypes, os, sys, time
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_NAME = 15
    def rename(name):
        libc.prctl(PR_SET_NAME, name.encode(), 0, 0, 0)
    mode, name = sys.argv[1], sys.argv[2]
    if mode == "zombie":
        child = os.fork()
        if child == 0:
            rename(name)
            os._exit(0)
        print(child, flush=True)
    else:
        rename(name)
        print(os.getpid(), flush=True)
    time.sleep(120)
    """
)


@dataclass
class Mimic:
    process: subprocess.Popen[str]
    pid: int  # the named process (for "zombie": the unreaped child)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)


@pytest.fixture
def spawn_mimic() -> Iterator[Callable[..., Mimic]]:
    """``spawn_mimic(name, argv0=..., zombie=False)``: a Python process that looks like ``name``.

    Its process name (comm, what ps and pgrep show) is set with
    prctl(PR_SET_NAME) and its argv[0] to ``argv0``, so psutil sees exactly
    what it would see of the real daemon. With ``zombie`` the named process
    is a child that exited and that its parent never reaps.
    """
    started: list[Mimic] = []

    def spawn(name: str, argv0: str | None = None, zombie: bool = False) -> Mimic:
        process = subprocess.Popen(
            [argv0 or name, "-c", MIMIC, "zombie" if zombie else "live", name],
            executable=sys.executable,
            stdout=subprocess.PIPE,
            text=True,
            # argv[0] is not the interpreter's path: tell it where its library is
            env={**os.environ, "PYTHONHOME": sys.base_prefix},
        )
        assert process.stdout is not None
        mimic = Mimic(process, int(process.stdout.readline()))
        started.append(mimic)
        wanted = psutil.STATUS_ZOMBIE if zombie else None
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # the rename (and the child's exit) has happened
            with contextlib.suppress(psutil.Error):
                proc = psutil.Process(mimic.pid)
                if proc.name() == name and (wanted is None or proc.status() == wanted):
                    break
            time.sleep(0.01)
        return mimic

    yield spawn
    for mimic in started:
        mimic.kill()


def unique_name(prefix: str = "hc") -> str:
    """A process name (at most 15 characters) no other process here has."""
    return f"{prefix}{os.getpid() % 100000}{time.monotonic_ns() % 1000:03d}"[:15]

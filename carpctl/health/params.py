"""What each kind of check takes: its keys, their types, and how a table is read into them.

``spec`` reads the keys common to every check and hands the rest to the
parser of the check's kind here.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from carpctl.health.reader import TableReader

INTERFACE = re.compile(r"[A-Za-z0-9_.:-]{1,15}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHELL_SYNTAX = "|&;<>$`*?(){}~"


class Kind(StrEnum):
    HTTP = "http"
    TCP = "tcp"
    PROCESS = "process"
    PFSYNC = "pfsync"
    COMMAND = "command"
    FILE = "file"
    LINK = "link"


@dataclass(frozen=True)
class HttpParams:
    url: str
    expect_status: tuple[int, ...] = (200,)
    body_pattern: re.Pattern[str] | None = None  # searched in the first 64 KiB of the body
    verify_tls: bool = True
    method: str = "GET"  # GET or HEAD


@dataclass(frozen=True)
class TcpParams:
    host: str
    port: int


@dataclass(frozen=True)
class ProcessParams:
    """Every selector given must match (at least one is)."""

    process_name: str | None = None  # the name ps -e / pgrep show (psutil's name())
    cmdline: re.Pattern[str] | None = None  # searched in the space-joined command line
    pidfile: Path | None = None  # the process whose PID it holds, if that is not stale


@dataclass(frozen=True)
class PfsyncParams:
    interface: str = "pfsync0"
    ifconfig: str = "ifconfig"  # a path, or a bare name looked up on PATH at probe time


@dataclass(frozen=True)
class CommandParams:
    argv: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()  # set on top of carpctl's own environment


@dataclass(frozen=True)
class FileParams:
    path: Path
    exists: bool = True  # true: passes while the file exists; false: while it does not


@dataclass(frozen=True)
class LinkParams:
    interface: str


Params = (
    HttpParams | TcpParams | ProcessParams | PfsyncParams | CommandParams | FileParams | LinkParams
)
KIND_OF: dict[type[Any], Kind] = {
    HttpParams: Kind.HTTP,
    TcpParams: Kind.TCP,
    ProcessParams: Kind.PROCESS,
    PfsyncParams: Kind.PFSYNC,
    CommandParams: Kind.COMMAND,
    FileParams: Kind.FILE,
    LinkParams: Kind.LINK,
}


KEYS: dict[Kind, frozenset[str]] = {
    Kind.HTTP: frozenset({"url", "expect_status", "body_pattern", "verify_tls", "method"}),
    Kind.TCP: frozenset({"host", "port"}),
    Kind.PROCESS: frozenset({"process_name", "cmdline", "pidfile"}),
    Kind.PFSYNC: frozenset({"interface", "ifconfig"}),
    Kind.COMMAND: frozenset({"argv", "env"}),
    Kind.FILE: frozenset({"path", "exists"}),
    Kind.LINK: frozenset({"interface"}),
}


def _http(r: TableReader) -> HttpParams:
    url = r.string("url", expect="an http:// or https:// URL")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a port out of range
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        raise r.error("url", f"expected an http:// or https:// URL, got {url!r}")
    method = r.string("method", "GET", choices=("GET", "HEAD"))
    raw_status = r.raw("expect_status")
    statuses = [raw_status] if not isinstance(raw_status, list) else raw_status
    if raw_status is None:
        statuses = [200]
    elif not statuses or not all(_is_status(s) for s in statuses):
        raise r.error(
            "expect_status",
            f"expected an HTTP status 100..599 or a list of them, got {raw_status!r}",
        )
    pattern = r.regex("body_pattern")
    if pattern is not None and method == "HEAD":
        raise r.error("body_pattern", "expected no body_pattern with method HEAD (no body)")
    return HttpParams(
        url=url,
        expect_status=tuple(statuses),
        body_pattern=pattern,
        verify_tls=r.boolean("verify_tls", True),
        method=method,
    )


def _is_status(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 599


def _tcp(r: TableReader) -> TcpParams:
    host = r.string("host", pattern=re.compile(r"[^\s/]{1,253}"), expect="a host name or address")
    return TcpParams(host=host, port=r.integer("port", 1, 65535))


def _process(r: TableReader) -> ProcessParams:
    name = r.optional_string("process_name", expect="a process name")
    cmdline = r.regex("cmdline")
    pidfile = r.optional_string("pidfile", expect="the path of a pidfile")
    if name is None and cmdline is None and pidfile is None:
        raise r.missing("process_name", "at least one of process_name, cmdline or pidfile")
    return ProcessParams(name, cmdline, Path(pidfile) if pidfile else None)


def _pfsync(r: TableReader) -> PfsyncParams:
    return PfsyncParams(
        interface=r.string("interface", "pfsync0", pattern=INTERFACE, expect="an interface name"),
        ifconfig=r.string("ifconfig", "ifconfig", expect="the path of ifconfig"),
    )


def _command(r: TableReader) -> CommandParams:
    argv = r.raw("argv")
    if isinstance(argv, str):
        raise r.error(
            "argv",
            f"expected a list of strings (the program and its arguments, run without a shell), "
            f"got the string {argv!r}{_argv_hint(argv)}",
        )
    if argv is None:
        raise r.missing("argv", 'a list of strings, e.g. ["/usr/local/bin/check", "--quiet"]')
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(word, str) and "\0" not in word for word in argv)
        or not argv[0]
    ):
        raise r.error("argv", f"expected a non-empty list of strings, got {argv!r}")
    env = r.raw("env")
    if env is None:
        env = {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and ENV_NAME.fullmatch(k) and isinstance(v, str) and "\0" not in v
        for k, v in env.items()
    ):
        raise r.error("env", f'expected a table of NAME = "string" values, got {env!r}')
    return CommandParams(tuple(argv), tuple(sorted(env.items())))


def _argv_hint(text: str) -> str:
    if any(c in text for c in SHELL_SYNTAX):
        return "; shell syntax needs a script: write one and give its path in argv"
    try:
        words = shlex.split(text)
    except ValueError:
        words = text.split()
    return f"; write it as {json.dumps(words)}"


def _file(r: TableReader) -> FileParams:
    path = r.string("path", expect="a file path")
    return FileParams(Path(path), r.boolean("exists", True))


def _link(r: TableReader) -> LinkParams:
    return LinkParams(r.string("interface", pattern=INTERFACE, expect="an interface name"))


PARSERS: dict[Kind, Callable[[TableReader], Params]] = {
    Kind.HTTP: _http,
    Kind.TCP: _tcp,
    Kind.PROCESS: _process,
    Kind.PFSYNC: _pfsync,
    Kind.COMMAND: _command,
    Kind.FILE: _file,
    Kind.LINK: _link,
}

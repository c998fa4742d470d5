"""A lab's persistent state: what ``carpctl lab down`` needs after a crash.

Every lab has a directory ``<root>/<name>/`` (root: /run/carpctl-lab) with
``state.json`` (namespaces, nodes, PIDs, paths), per-node configs, the
password file, logs and the daemons' state directories. The file is
rewritten atomically after every change, and a namespace is recorded
before it is created, so a lab command killed at any moment leaves enough
behind for ``down`` to remove everything.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from carpctl.lab.netns import LabError, UnsafeOperation

DEFAULT_ROOT = Path("/run/carpctl-lab")
NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")
NAMESPACE_PREFIX = "carplab-"
STATE_FILE = "state.json"


def check_name(name: str) -> str:
    """A lab name: a lowercase letter, then up to 15 of [a-z0-9_] (no '-': see prefix)."""
    if not NAME.fullmatch(name):
        raise UnsafeOperation(
            f"bad lab name {name!r}: use a lowercase letter then up to 15 letters, digits or _"
        )
    return name


def prefix_of(name: str) -> str:
    """The namespace prefix of lab ``name``: ``carplab-<name>-``."""
    return f"{NAMESPACE_PREFIX}{check_name(name)}-"


def is_lab_namespace(name: str, namespace: str) -> bool:
    """Whether ``namespace`` is one the lab called ``name`` would create."""
    pattern = re.escape(prefix_of(name)) + r"(switch|client|node[0-9]{1,2})"
    return re.fullmatch(pattern, namespace) is not None


@dataclass
class ProcessState:
    """A process started by the lab, known by PID and start time."""

    pid: int
    starttime: int
    namespace: str
    argv: list[str]
    log: str


@dataclass
class HostState:
    """A node or the client: its namespace and real addresses on ``lab0``."""

    name: str
    namespace: str
    addresses: list[str]
    mac: str = ""
    advskew: int = 0
    config: str = ""
    log: str = ""
    failure: str = ""  # how it was failed: kill|stop|term|linkdown, "" when healthy
    command: list[str] = field(default_factory=list)  # the node's daemon; [] = carpctl run


@dataclass
class LabState:
    name: str
    prefix: str
    nodes: int = 2
    ipv6: bool = False
    preempt: bool = False
    vhid: int = 1
    advbase: int = 1
    vips: list[str] = field(default_factory=list)
    password_file: str = ""
    owner_pid: int = 0  # the process that built the lab (a demo removes it when done)
    owner_starttime: int = 0
    namespaces: list[str] = field(default_factory=list)
    hosts: dict[str, HostState] = field(default_factory=dict)
    processes: dict[str, ProcessState] = field(default_factory=dict)  # by role, e.g. node1

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LabState:
        raw: dict[str, Any] = json.loads(text)
        hosts = {k: HostState(**v) for k, v in raw.pop("hosts", {}).items()}
        processes = {k: ProcessState(**v) for k, v in raw.pop("processes", {}).items()}
        return cls(**raw, hosts=hosts, processes=processes)


class StateDir:
    """``<root>/<name>/``: the state file, a lock, and the files of the nodes."""

    def __init__(self, name: str, root: Path = DEFAULT_ROOT) -> None:
        self.name = check_name(name)
        self.root = Path(root)
        self.path = self.root / name

    @property
    def file(self) -> Path:
        return self.path / STATE_FILE

    def exists(self) -> bool:
        return self.path.is_dir()

    def create(self) -> None:
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            self.path.mkdir(mode=0o700)
        except FileExistsError:
            raise LabError(
                f"lab {self.name} already exists ({self.path}); "
                f"remove it with: carpctl lab down --name {self.name}"
            ) from None

    def host_dir(self, host: str) -> Path:
        path = self.path / host
        path.mkdir(mode=0o700, exist_ok=True)
        return path

    def load(self) -> LabState | None:
        """The recorded state, or None when missing or unreadable (a half-written lab)."""
        try:
            return LabState.from_json(self.file.read_text())
        except (OSError, ValueError, TypeError):
            return None

    def save(self, state: LabState) -> None:
        """Write atomically: a crash leaves the old or the new file, never half of one."""
        temporary = self.path / f".{STATE_FILE}.{os.getpid()}"
        temporary.write_text(state.to_json())
        temporary.replace(self.file)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Serialize lab commands that change this lab."""
        fd = os.open(self.path / ".lock", os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def remove(self) -> None:
        if self.path.parent == self.root and self.path.name == self.name:
            shutil.rmtree(self.path, ignore_errors=True)


def write_secret(path: Path, secret: str) -> None:
    """Create ``path`` with mode 0600 holding ``secret`` (never readable by others)."""
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(secret + "\n")


def list_labs(root: Path = DEFAULT_ROOT) -> list[str]:
    """Names of the labs with a state directory under ``root``."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and NAME.fullmatch(p.name))

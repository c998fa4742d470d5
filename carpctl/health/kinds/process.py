"""process: a live (not zombie) process matching every selector given.

Selectors: ``process_name`` (exactly the name ``ps -e`` and ``pgrep``
show: psutil's ``name()``), ``cmdline`` (a regex searched in the command
line joined by spaces) and ``pidfile``. Without a pidfile, any process
matching the selectors passes; carpctl's own process is never counted.
With a pidfile, only the PID it holds counts, and the pidfile is stale
(the check fails) when:

* it is missing, not a regular file, or holds no PID;
* the PID is gone, or is a zombie (exited, not yet reaped);
* the PID was reused: its process started more than ``START_SLACK``
  seconds after the pidfile was last written (a daemon writes its pidfile
  after it starts; the slack absorbs the whole-second boot time the kernel
  derives process start times from);
* the process's name or command line differs from ``process_name`` /
  ``cmdline`` when those are given too.
"""

from __future__ import annotations

import os
import stat

import psutil

from carpctl.health.params import ProcessParams
from carpctl.health.result import CheckResult

START_SLACK = 2.0
PIDFILE_MAX = 64  # bytes read from a pidfile
LISTED = 5  # PIDs named in a detail


def probe(params: ProcessParams) -> CheckResult:
    if params.pidfile is not None:
        return _by_pidfile(params)
    found, zombies = [], []
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.pid == os.getpid() or not _matches(params, process.info):
            continue
        if process.info["status"] == psutil.STATUS_ZOMBIE:
            zombies.append(process.pid)
        else:
            found.append(process.pid)
    what = _describe(params)
    if found:
        return CheckResult.ok(f"{what} running: pid {_pids(found)}")
    if zombies:
        return CheckResult.failure(f"{what}: only zombies (pid {_pids(zombies)})")
    return CheckResult.failure(f"no {what} running")


def _by_pidfile(params: ProcessParams) -> CheckResult:
    assert params.pidfile is not None
    pidfile = params.pidfile
    try:
        # O_NONBLOCK: a FIFO in its place must not hang the probe.
        fd = os.open(pidfile, os.O_RDONLY | os.O_NONBLOCK)
        try:
            file_stat = os.fstat(fd)
            if not stat.S_ISREG(file_stat.st_mode):
                return CheckResult.failure(f"pidfile {pidfile} is not a regular file")
            text = os.read(fd, PIDFILE_MAX).decode("ascii", errors="replace")
        finally:
            os.close(fd)
    except FileNotFoundError:
        return CheckResult.failure(f"pidfile {pidfile} does not exist")
    except OSError as error:
        return CheckResult.failure(f"cannot read pidfile {pidfile}: {error.strerror or error}")
    word = text.split("\n", 1)[0].strip()
    if not word.isdigit() or int(word) <= 0:
        return CheckResult.failure(f"pidfile {pidfile} holds no PID: {word[:20]!r}")
    pid = int(word)
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            info: dict[str, object] = {
                "name": process.name(),
                "cmdline": process.cmdline(),
                "status": process.status(),
                "started": process.create_time(),
            }
    except psutil.ZombieProcess:  # (a NoSuchProcess) its command line cannot be read
        return CheckResult.failure(f"pid {pid} from {pidfile} is a zombie")
    except psutil.NoSuchProcess:
        return CheckResult.failure(f"stale pidfile {pidfile}: pid {pid} is gone")
    except psutil.Error as error:
        return CheckResult.failure(f"cannot examine pid {pid} from {pidfile}: {error}")
    if info["status"] == psutil.STATUS_ZOMBIE:
        return CheckResult.failure(f"pid {pid} from {pidfile} is a zombie")
    started = info["started"]
    if isinstance(started, float) and started > file_stat.st_mtime + START_SLACK:
        return CheckResult.failure(
            f"stale pidfile {pidfile}: pid {pid} ({info['name']}) started after it was written"
        )
    if not _matches(params, info):
        return CheckResult.failure(
            f"stale pidfile {pidfile}: pid {pid} is {info['name']!r}, not a {_describe(params)}"
        )
    return CheckResult.ok(f"pid {pid} ({info['name']}) from {pidfile} is running")


def _matches(params: ProcessParams, info: dict[str, object]) -> bool:
    if params.process_name is not None and info.get("name") != params.process_name:
        return False
    if params.cmdline is not None:
        argv = info.get("cmdline")
        line = " ".join(argv) if isinstance(argv, list) else ""
        if params.cmdline.search(line) is None:
            return False
    return True


def _describe(params: ProcessParams) -> str:
    parts = []
    if params.process_name is not None:
        parts.append(f"named {params.process_name!r}")
    if params.cmdline is not None:
        parts.append(f"with a command line matching /{params.cmdline.pattern}/")
    return "process " + " and ".join(parts) if parts else "process"


def _pids(pids: list[int]) -> str:
    shown = ", ".join(str(p) for p in pids[:LISTED])
    return shown + (f" and {len(pids) - LISTED} more" if len(pids) > LISTED else "")

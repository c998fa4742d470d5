"""process probes against real processes: named, dying, zombie, and pidfiles gone stale."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from carpctl.core.checkstate import Result
from carpctl.health.kinds import probe

from .conftest import Mimic, spec_of, unique_name

Spawn = Callable[..., Mimic]


def test_by_name_passes_while_the_process_lives_and_fails_once_it_died(
    spawn_mimic: Spawn,
) -> None:
    name = unique_name()
    mimic = spawn_mimic(name)
    spec = spec_of(kind="process", process_name=name)
    result = probe(spec)
    assert (result.status, result.detail) == (
        Result.OK,
        f"process named {name!r} running: pid {mimic.pid}",
    )
    mimic.kill()
    result = probe(spec)
    assert (result.status, result.detail) == (Result.FAILURE, f"no process named {name!r} running")


def test_by_command_line_regex(spawn_mimic: Spawn) -> None:
    name = unique_name()
    mimic = spawn_mimic(name, argv0=f"{name}: master process /usr/sbin/{name}")
    spec = spec_of(kind="process", cmdline=f"^{name}: master process")
    assert probe(spec).status is Result.OK
    both = spec_of(kind="process", process_name=name, cmdline="worker process")
    assert probe(both).status is Result.FAILURE  # every selector must match
    mimic.kill()
    assert probe(spec).status is Result.FAILURE


def test_a_zombie_counts_as_dead(spawn_mimic: Spawn, tmp_path: Path) -> None:
    name = unique_name()
    zombie = spawn_mimic(name, zombie=True)
    result = probe(spec_of(kind="process", process_name=name))
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"process named {name!r}: only zombies (pid {zombie.pid})",
    )
    pidfile = tmp_path / "z.pid"
    pidfile.write_text(f"{zombie.pid}\n")
    result = probe(spec_of(kind="process", pidfile=str(pidfile)))
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"pid {zombie.pid} from {pidfile} is a zombie",
    )


def test_a_fresh_pidfile_of_a_live_process_passes(spawn_mimic: Spawn, tmp_path: Path) -> None:
    name = unique_name()
    mimic = spawn_mimic(name)
    pidfile = tmp_path / "d.pid"
    pidfile.write_text(f"{mimic.pid}\n")  # written after the process started, like a daemon
    result = probe(spec_of(kind="process", pidfile=str(pidfile), process_name=name))
    assert (result.status, result.detail) == (
        Result.OK,
        f"pid {mimic.pid} ({name}) from {pidfile} is running",
    )


def test_stale_pidfiles(spawn_mimic: Spawn, tmp_path: Path) -> None:
    pidfile = tmp_path / "d.pid"
    spec = spec_of(kind="process", pidfile=str(pidfile))

    # the PID is gone: a process that exited and was reaped
    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    pidfile.write_text(f"{dead.pid}\n")
    result = probe(spec)
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"stale pidfile {pidfile}: pid {dead.pid} is gone",
    )

    # the PID was reused: its process started well after the pidfile was written
    name = unique_name()
    mimic = spawn_mimic(name)
    pidfile.write_text(f"{mimic.pid}\n")
    an_hour_ago = time.time() - 3600
    os.utime(pidfile, (an_hour_ago, an_hour_ago))
    result = probe(spec)
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"stale pidfile {pidfile}: pid {mimic.pid} ({name}) started after it was written",
    )

    # the PID belongs to a process of another name
    pidfile.write_text(f"{mimic.pid}\n")
    result = probe(spec_of(kind="process", pidfile=str(pidfile), process_name="nginx"))
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"stale pidfile {pidfile}: pid {mimic.pid} is {name!r}, not a process named 'nginx'",
    )


def test_pidfiles_that_hold_no_pid(tmp_path: Path) -> None:
    pidfile = tmp_path / "x.pid"
    spec = spec_of(kind="process", pidfile=str(pidfile))
    assert probe(spec).detail == f"pidfile {pidfile} does not exist"
    for text in ["", "abc\n", "-5\n", "0\n"]:
        pidfile.write_text(text)
        result = probe(spec)
        assert result.status is Result.FAILURE
        assert result.detail.startswith(f"pidfile {pidfile} holds no PID")
    pidfile.unlink()
    os.mkfifo(pidfile)  # must not block the probe (a FIFO nobody writes to)
    result = probe(spec)
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"pidfile {pidfile} is not a regular file",
    )


def test_our_own_process_is_never_counted() -> None:
    own = " ".join(Path(f"/proc/{os.getpid()}/cmdline").read_text().split("\0")).strip()
    # a regex matching only this very process (its PID is not in any other command line)
    spec = spec_of(kind="process", cmdline=f"^{__import__('re').escape(own)}$")
    assert probe(spec).status is Result.FAILURE

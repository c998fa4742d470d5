"""Running one argv for the reactor: never a shell, always a hard timeout.

``run_argv`` runs a program in a session (process group) of its own, stdin
from /dev/null, cwd /, its output (stdout and stderr together) into an
anonymous temporary file, not a pipe: a ``start`` that daemonizes returns as
soon as the program itself exits, whatever its children keep open, and
they never die of a closed pipe. Past the timeout (or when the caller is
cancelled) the whole process group is killed with SIGKILL. A program that
exits in time keeps its group: what a ``start`` left running is the
service.

``Event`` is the role change a step answers: the devd-style arguments
(``1@eth0 MASTER``) and the ``CARPCTL_*`` environment of hook commands.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO

from carpctl.core.reactor import Step

OUTPUT_MAX = 64 * 1024  # the tail of the output kept
# carpctl's own service-manager plumbing, never handed to what it starts: a child
# that inherits NOTIFY_SOCKET could tell systemd that *carpctl* is ready or alive.
PRIVATE = ("NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_FDS", "LISTEN_PID",
           "LISTEN_FDNAMES")  # fmt: skip
REAP_GRACE = 5.0  # seconds to wait for a SIGKILLed process to be reaped


@dataclass(frozen=True, slots=True)
class Event:
    """The event a step answers; values are passed as literal arguments, never to a shell."""

    service: str
    action: str  # start | stop
    vhid: str  # "1@eth0"
    state: str  # the new role: MASTER for a start
    old_state: str
    seq: int
    time: float  # epoch seconds of the role change

    @classmethod
    def answering(cls, step: Step, now: float) -> Event:
        """The event ``step`` answers; ``now`` (wall clock) when its role change has no time."""
        at = step.at if step.at is not None else now
        return cls(step.service, str(step.action), step.vhid, str(step.state),
                   str(step.old_state), step.seq, at)  # fmt: skip

    def arguments(self) -> list[str]:
        """What devd passes to its action: ``1@eth0 MASTER``."""
        return [self.vhid, self.state]

    def environment(self) -> dict[str, str]:
        vhid, _, interface = self.vhid.partition("@")
        return {
            "CARPCTL_SERVICE": self.service,
            "CARPCTL_ACTION": self.action,
            "CARPCTL_VHID": vhid,
            "CARPCTL_INTERFACE": interface,
            "CARPCTL_STATE": self.state,
            "CARPCTL_OLD_STATE": self.old_state,
            "CARPCTL_SEQ": str(self.seq),
            "CARPCTL_TIME": f"{self.time:.6f}",
        }


@dataclass(frozen=True, slots=True)
class Completed:
    """How a program ended: its exit status, or a timeout, or it never started."""

    argv: tuple[str, ...]
    returncode: int | None  # None: timed out or not started
    output: str  # the last non-empty line of its output
    timed_out: bool = False
    error: str = ""  # why it did not start
    timeout: float = 0.0

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        program = self.argv[0]
        if self.error:
            return self.error
        if self.timed_out:
            return f"{program} still running after {self.timeout:g} s: killed"
        assert self.returncode is not None
        if self.returncode < 0:
            return f"{program} was killed by {signal_name(-self.returncode)}"
        said = f": {self.output}" if self.output else ""
        return f"{program} exited {self.returncode}{said}"


async def run_argv(
    argv: Sequence[str], *, timeout: float, env: Mapping[str, str] | None = None
) -> Completed:
    """Run ``argv`` until it exits or ``timeout`` passes (then its group is killed)."""
    words = tuple(argv)
    with tempfile.TemporaryFile() as output:
        try:
            process = await asyncio.create_subprocess_exec(
                *words,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
                env=environment() if env is None else dict(env),
            )
        except OSError as error:
            return Completed(words, None, "", error=not_started(words[0], error))
        try:
            await asyncio.wait_for(process.wait(), timeout)
        except TimeoutError:
            kill_group(process.pid)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(process.wait(), REAP_GRACE)
            return Completed(words, None, _tail(output), timed_out=True, timeout=timeout)
        except BaseException:  # cancelled: never leave a half-run step behind
            kill_group(process.pid)
            raise
        assert process.returncode is not None
        return Completed(words, process.returncode, _tail(output))


def _tail(output: IO[bytes]) -> str:
    size = output.seek(0, os.SEEK_END)
    output.seek(max(0, size - OUTPUT_MAX))
    text = output.read().decode(errors="replace")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:500] if lines else ""


def environment(*extra: Mapping[str, str]) -> dict[str, str]:
    """carpctl's environment without its ``PRIVATE`` variables, plus ``extra`` in order."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    for more in extra:
        env.update(more)
    return env


def kill_group(pgid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    """Signal the process group ``pgid`` leads (it may be empty already)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def not_started(program: str, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return f"command not found: {program}"
    if isinstance(error, PermissionError):
        return f"cannot execute {program}: permission denied"
    return f"cannot start {program}: {error.strerror or error}"

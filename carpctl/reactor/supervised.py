"""``run`` services: a long-running server that carpctl itself supervises.

For a program that IS the server (it does not exit, it does not
daemonize): ``run = ["/usr/local/bin/app", "--serve"]``. On MASTER carpctl
spawns it (a session of its own, stdin from /dev/null, cwd /, stdout and
stderr those of carpctl, so under systemd they reach the journal), with the
``CARPCTL_*`` environment of the event but *no* devd-style arguments (the
argv is the server's, not a hook's). The start succeeds when the process
is still alive ``START_GRACE`` seconds later (an exit before is a failed
start, with its exit status). To stop it, its process group gets SIGTERM,
then SIGKILL once ``timeout`` has passed; whatever is left in the group is
SIGKILLed too. If it dies on its own, ``on_exit(detail)`` reports it.

Its state is whether the process is alive. ``carpctl run`` does not stop
it at exit unless asked (``Reactor.release_all``); under systemd the
daemon's cgroup takes it down with carpctl.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess

from carpctl.core.reactor import Actual
from carpctl.reactor.managers import OnExit, Outcome
from carpctl.reactor.process import (
    REAP_GRACE,
    Event,
    environment,
    kill_group,
    not_started,
    signal_name,
)
from carpctl.reactor.spec import ServiceSpec

START_GRACE = 0.5  # seconds a new process must live for its start to count (at most timeout)


def describe_exit(program: str, returncode: int) -> str:
    if returncode < 0:
        return f"{program} was killed by {signal_name(-returncode)}"
    return f"{program} exited {returncode}"


class RunManager:
    state_source = "process"

    def __init__(self, spec: ServiceSpec, on_exit: OnExit) -> None:
        self.spec = spec
        self.on_exit = on_exit
        self.process: asyncio.subprocess.Process | None = None
        self._exited: asyncio.Task[int] | None = None
        self._stopping = False

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive and self.process else None

    @property
    def alive(self) -> bool:
        return self._exited is not None and not self._exited.done()

    async def start(self, event: Event) -> Outcome:
        if self.alive:
            return Outcome(True, f"already running (pid {self.pid})")
        program = self.spec.run[0]
        env = environment(dict(self.spec.env), event.environment())
        try:
            process = await asyncio.create_subprocess_exec(
                *self.spec.run,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
                env=env,
            )
        except OSError as error:
            return Outcome(False, not_started(program, error))
        self.process, self._stopping = process, False
        self._exited = asyncio.get_running_loop().create_task(process.wait())
        try:
            await asyncio.wait_for(
                asyncio.shield(self._exited), min(START_GRACE, self.spec.timeout)
            )
        except TimeoutError:
            self._exited.add_done_callback(self._on_exit)
            return Outcome(True, f"running (pid {process.pid})")
        except BaseException:
            self._stopping = True
            kill_group(process.pid)
            raise
        kill_group(process.pid)  # whatever it left in its group
        return Outcome(False, f"{describe_exit(program, self._exited.result())} at once")

    async def stop(self, event: Event | None) -> Outcome:
        process, exited = self.process, self._exited
        if process is None or exited is None or exited.done():
            return Outcome(True, "not running")
        self._stopping = True
        kill_group(process.pid, signal.SIGTERM)
        how = "SIGTERM"
        try:
            await asyncio.wait_for(asyncio.shield(exited), self.spec.timeout)
        except TimeoutError:
            kill_group(process.pid)
            how = f"SIGKILL after {self.spec.timeout:g} s"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(exited), REAP_GRACE)
        kill_group(process.pid)  # children that outlived it
        if not exited.done():
            return Outcome(False, f"pid {process.pid} survives SIGKILL", timed_out=True)
        gone = describe_exit(self.spec.run[0], exited.result())
        return Outcome(True, f"stopped by {how} ({gone})")

    async def status(self) -> Actual | None:
        return Actual.RUNNING if self.alive else Actual.STOPPED

    async def close(self) -> bool:
        if not self.alive:
            return False
        await self.stop(None)
        return True

    def _on_exit(self, exited: asyncio.Task[int]) -> None:
        if self._stopping or exited is not self._exited or exited.cancelled():
            return
        if self.process is None or exited.exception() is not None:
            return
        kill_group(self.process.pid)
        self.on_exit(describe_exit(self.spec.run[0], exited.result()))

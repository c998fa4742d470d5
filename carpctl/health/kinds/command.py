"""command: run an argv (never a shell) under a hard timeout; the exit status decides.

Exit 0 is OK, 1 WARNING (passes, reported), 2 and above FAILURE; killed by
a signal that was not ours is a FAILURE; still running at the timeout, its
whole process group is killed (SIGKILL) and the result is TIMEOUT. The
command runs in a session of its own, with stdin from /dev/null, cwd /,
carpctl's environment plus the spec's ``env`` and ``CARPCTL_CHECK=<name>``;
its last non-empty output line (stdout and stderr together) is the detail.
When it exits, whatever it left running in its process group is killed
too, so a check never leaves children behind. (A grandchild that leaves
the session with setsid escapes the group kill; carpctl then waits at most
``OUTPUT_GRACE`` for the end of the output and judges by the exit status.)

``run`` is the asyncio form the runner uses; ``probe`` the blocking one
(its output goes to an anonymous temporary file).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import tempfile

from carpctl.health.params import CommandParams
from carpctl.health.result import CheckResult
from carpctl.health.spec import CheckSpec

OUTPUT_MAX = 64 * 1024  # the tail of the output kept
EXIT_WARNING = 1
OUTPUT_GRACE = 1.0  # seconds to wait for the end of the output once the group is killed


class _Collector(asyncio.SubprocessProtocol):
    """Keeps the tail of the output; tells when the process exited and when output ended."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.output = bytearray()
        self.exited: asyncio.Future[None] = loop.create_future()
        self.eof: asyncio.Future[None] = loop.create_future()

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        self.output += data.encode() if isinstance(data, str) else data
        del self.output[:-OUTPUT_MAX]

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if not self.eof.done():
            self.eof.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)


async def run(spec: CheckSpec, params: CommandParams) -> CheckResult:
    # Not asyncio.create_subprocess_exec: before Python 3.12 its wait() also
    # waits for the pipes to close, which a child left behind may delay.
    loop = asyncio.get_running_loop()
    try:
        transport, collector = await loop.subprocess_exec(
            lambda: _Collector(loop),
            *params.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd="/",
            env=environment(spec, params),
        )
    except OSError as error:
        return not_started(params, error)
    timed_out = False
    try:
        try:
            await asyncio.wait_for(asyncio.shield(collector.exited), spec.timeout)
        except TimeoutError:
            timed_out = True
        finally:  # also when cancelled: never leave the group running
            kill_group(transport.get_pid())
        # EOF comes at once, unless something escaped the group (setsid) holding the pipe
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(collector.eof), OUTPUT_GRACE)
        await asyncio.shield(collector.exited)
    finally:
        transport.close()
    if timed_out:
        return CheckResult.timeout(f"{params.argv[0]} still running after {spec.timeout:g} s")
    returncode = transport.get_returncode()
    assert returncode is not None
    return judge(params, returncode, bytes(collector.output))


def probe(spec: CheckSpec, params: CommandParams) -> CheckResult:
    # The output goes to an anonymous file, not a pipe: nothing left behind
    # holding a pipe open can delay the result.
    with tempfile.TemporaryFile() as output:
        try:
            process = subprocess.Popen(
                params.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd="/",
                env=environment(spec, params),
            )
        except OSError as error:
            return not_started(params, error)
        timed_out = False
        try:
            process.wait(spec.timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            kill_group(process.pid)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            process.wait()
        if timed_out:
            return CheckResult.timeout(f"{params.argv[0]} still running after {spec.timeout:g} s")
        size = output.seek(0, os.SEEK_END)
        output.seek(max(0, size - OUTPUT_MAX))
        return judge(params, process.returncode, output.read())


def environment(spec: CheckSpec, params: CommandParams) -> dict[str, str]:
    return {**os.environ, **dict(params.env), "CARPCTL_CHECK": spec.name}


def kill_group(pgid: int) -> None:
    """SIGKILL the process group the command leads (it may already be empty).

    Also after the leader was reaped: while members remain, the kernel keeps
    its PID (their group ID) from being reused.
    """
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def not_started(params: CommandParams, error: OSError) -> CheckResult:
    if isinstance(error, FileNotFoundError):
        return CheckResult.failure(f"command not found: {params.argv[0]}")
    if isinstance(error, PermissionError):
        return CheckResult.failure(f"cannot execute {params.argv[0]}: permission denied")
    return CheckResult.failure(f"cannot start {params.argv[0]}: {error.strerror or error}")


def judge(params: CommandParams, returncode: int, output: bytes) -> CheckResult:
    lines = [line for line in output.decode(errors="replace").splitlines() if line.strip()]
    said = lines[-1].strip() if lines else ""
    if returncode == 0:
        return CheckResult.ok(said or "exit 0")
    if returncode == EXIT_WARNING:
        return CheckResult.warning(f"exit 1: {said}" if said else "exit 1")
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return CheckResult.failure(f"{params.argv[0]} was killed by {name}")
    return CheckResult.failure(f"exit {returncode}: {said}" if said else f"exit {returncode}")

"""Running the BSD tools: argv lists, a timeout, one exception type.

Every call goes through a ``Runner``: a callable that takes an argv list and
returns the command's standard output, or raises ``CommandError``. The real
one runs the program (never through a shell); tests substitute one that
calls the fake kernels in-process or crashes on purpose.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence

DEFAULT_TIMEOUT = 5.0

Runner = Callable[[Sequence[str]], str]


class BackendError(Exception):
    """The kernel side of carpctl cannot do what was asked; nothing is guessed."""


class CommandError(BackendError):
    """A BSD tool failed, timed out or could not be started.

    ``completed`` says the program ran to its end and exited with a non-zero
    status: it refused, so a write it was asked for did not happen. When
    False (a timeout, a signal, a program that could not be started) nobody
    knows whether a write took effect.
    """

    def __init__(
        self, argv: Sequence[str], detail: str, *, returncode: int | None, stderr: str = ""
    ) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = stderr.strip()
        self.completed = returncode is not None and returncode > 0
        message = f"`{shlex.join(self.argv)}` {detail}"
        if self.stderr:
            message += f": {self.stderr}"
        super().__init__(message)


class ParseError(BackendError):
    """A tool's output is not what the documented format says it is."""


def check_result(argv: Sequence[str], returncode: int, stdout: str, stderr: str) -> str:
    """``stdout`` when the program succeeded, else the CommandError it deserves."""
    if returncode == 0:
        return stdout
    if returncode < 0:
        detail = f"was killed by signal {-returncode}"
        raise CommandError(argv, detail, returncode=None, stderr=stderr)
    raise CommandError(argv, f"failed (exit {returncode})", returncode=returncode, stderr=stderr)


class SubprocessRunner:
    """Run a program with a timeout, capturing its output as text."""

    def __init__(
        self, *, timeout: float = DEFAULT_TIMEOUT, env: Mapping[str, str] | None = None
    ) -> None:
        self.timeout = timeout
        self.env = dict(env) if env is not None else None

    def __call__(self, argv: Sequence[str]) -> str:
        args = list(argv)
        try:
            done = subprocess.run(
                args,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                env=self.env,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except subprocess.TimeoutExpired as error:
            stderr = (
                error.stderr.decode(errors="replace") if isinstance(error.stderr, bytes) else ""
            )
            raise CommandError(
                args, f"timed out after {self.timeout:g} s", returncode=None, stderr=stderr
            ) from None
        except OSError as error:
            raise CommandError(
                args, f"could not be started ({error.strerror})", returncode=None
            ) from None
        return check_result(args, done.returncode, done.stdout, done.stderr)


def find_tool(name: str, explicit: str | None = None, *, search_path: str | None = None) -> str:
    """The program to run for ``name``: ``explicit`` if given, else found on PATH.

    ``explicit`` is a path, or a bare name to look up instead of ``name``.
    ``search_path`` replaces the process's PATH for the lookup (tests point
    it at the fake kernels).
    """
    if explicit and os.sep not in explicit:
        name, explicit = explicit, None
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise BackendError(f"{name}: {explicit} is not an executable file")
        return explicit
    found = shutil.which(name, path=search_path)
    if found is None:
        where = search_path if search_path is not None else os.environ.get("PATH", "")
        raise BackendError(f"{name} not found on PATH ({where})")
    return found

"""What every command shares: exit codes, the one-sentence error, the parser."""

from __future__ import annotations

import argparse
import sys
from enum import IntEnum
from typing import NoReturn, Protocol

PROG = "carpctl"


class ExitCode(IntEnum):
    """The exit codes of every command (design section 5)."""

    OK = 0
    FAILED = 1  # the operation failed
    USAGE = 2  # usage or configuration error
    UNREACHABLE = 3  # the daemon is not reachable


class CliError(Exception):
    """Stop the command: print ``carpctl: <message>`` on stderr, exit with ``code``."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str) -> NoReturn:
    """Print the one error sentence and exit 2, as argparse's own errors do."""
    print(f"{PROG}: {message}", file=sys.stderr)
    raise SystemExit(ExitCode.USAGE)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error is one short sentence and exit code 2."""

    def error(self, message: str) -> NoReturn:
        # Arguments can come from devd or a hostile caller: keep the sentence on one
        # printable line whatever they contain.
        printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in message)
        fail(f"{printable} (see '{self.prog} --help')")


class Command(Protocol):
    """A command module: ``carpctl NAME ...``."""

    NAME: str
    HELP: str
    DESCRIPTION: str

    def configure(self, parser: argparse.ArgumentParser) -> None:
        """Add the command's own arguments."""

    def run(self, args: argparse.Namespace) -> int:
        """Do the work; return an ``ExitCode`` or raise ``CliError``."""

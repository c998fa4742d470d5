"""The ``carpctl`` entry point: one sub-command per module in ``COMMANDS``.

To add a command, write ``carpctl/cli/NAME.py`` with ``NAME``, ``HELP``,
``DESCRIPTION``, ``configure(parser)`` and ``run(args) -> int`` (see
``common.Command``) and list the module in ``COMMANDS``. Every command gets
``-c/--config FILE``; errors are raised as ``CliError`` and printed here as
one sentence.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from carpctl.cli import (
    check,
    configcheck,
    demote,
    event,
    events,
    inspect,
    lab,
    maintenance,
    reload,
    run,
    sniff,
    status,
)
from carpctl.cli.common import PROG, ArgumentParser, CliError, Command, ExitCode

COMMANDS: tuple[Command, ...] = (
    run,
    reload,
    status,
    demote,
    maintenance,
    event,
    events,
    check,
    configcheck,
    inspect,
    sniff,
    lab,
)


def _version() -> str:
    try:
        return version("carpctl")
    except PackageNotFoundError:
        return "unknown"


def _config_option(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "-c",
        "--config",
        metavar="FILE",
        default=default,
        help="configuration file (tells the CLI where the daemon's control socket is)",
    )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="CARP clustered-service controller.",
        epilog="Exit codes: 0 success, 1 the operation failed, 2 usage or configuration "
        "error, 3 the daemon is not reachable.",
    )
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    _config_option(parser, None)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        sub = commands.add_parser(
            command.NAME,
            help=command.HELP,
            description=command.DESCRIPTION,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        # SUPPRESS keeps "carpctl -c FILE inspect" from being reset by the sub-parser.
        _config_option(sub, argparse.SUPPRESS)
        command.configure(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``carpctl``; returns the exit code (the console script exits with it)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, --version, or a usage error already printed
        if stop.code is None or isinstance(stop.code, int):
            return stop.code or 0
        return int(ExitCode.USAGE)
    try:
        return int(args.run(args))
    except CliError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return int(error.code)
    except BrokenPipeError:
        # The reader went away (carpctl ... | head): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return int(ExitCode.FAILED)
    except KeyboardInterrupt:
        return 130
    except Exception as error:  # one sentence, never a traceback
        print(f"{PROG}: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return int(ExitCode.FAILED)


if __name__ == "__main__":
    sys.exit(main())

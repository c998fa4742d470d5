"""``carpctl run``: the supervisor daemon, in the foreground."""

from __future__ import annotations

import argparse

from carpctl.cli.common import CliError, ExitCode
from carpctl.daemon.config import DEFAULT_PATH, ConfigError, load

NAME = "run"
HELP = "run the daemon in the foreground (systemd, rc.d, or a terminal)"
DESCRIPTION = """\
Load the configuration, then run until SIGTERM or SIGINT. With the embedded
backend (the default on Linux) carpctl speaks CARP itself: it elects a
master per vhid, adds the virtual addresses on the master and announces them
with gratuitous ARP / unsolicited neighbour advertisements. A graceful stop
sends a bow-out advertisement, so a backup takes over at once, then removes
the addresses. After a crash the next start removes stale addresses first.

Exit codes: 0 stopped cleanly; 1 the engine could not run (e.g. a socket
could not be opened); 2 the configuration is invalid."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(config_default=str(DEFAULT_PATH))


def run(args: argparse.Namespace) -> int:
    from carpctl.daemon import run as daemon  # imports asyncio and the adapters

    try:
        config = load(args.config or args.config_default)
        daemon.resolve_backend(config)
    except (ConfigError, daemon.BackendUnavailable) as error:
        raise CliError(ExitCode.USAGE, str(error)) from None
    try:
        return daemon.run(config)
    except OSError as error:
        raise CliError(
            ExitCode.FAILED, f"the engine could not start: {error.strerror or error}"
        ) from None

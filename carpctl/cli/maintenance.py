"""``carpctl maintenance on|off``: step this node aside, persistently."""

from __future__ import annotations

import argparse
import time
from typing import Any

from carpctl.cli.common import ExitCode
from carpctl.cli.demote import add_reason_and_duration, optional
from carpctl.cli.status import call, describe
from carpctl.control.results import ChangeResult

NAME = "maintenance"
HELP = "put this node in maintenance (never master while a peer is up), or take it out"
DESCRIPTION = """\
  carpctl maintenance on [--reason R] [--for DURATION]
  carpctl maintenance off

Maintenance adds the largest demotion (240) to the ledger, so every healthy
peer wins the election, and keeps it until 'off' (or until DURATION has
passed). It survives restarts of the daemon and reboots of the host.

Exit codes: 0 done; 1 the daemon refused; 2 usage or config error; 3 the
daemon is not reachable."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("state", choices=("on", "off"), metavar="on|off")
    add_reason_and_duration(parser)


def run(args: argparse.Namespace) -> int:
    request: dict[str, Any] = {"on": args.state == "on", **optional(args)}
    result: ChangeResult = call(args, "maintenance", request)
    entry, total = result["entry"], result["total"]
    done = "maintenance off" if entry is None else describe(entry, time.time())
    print(f"{done}; demotion total {total}")
    return ExitCode.OK

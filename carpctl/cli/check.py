"""``carpctl check [NAME]``: run the health checks once, now."""

from __future__ import annotations

import argparse
import time

from carpctl.cli.common import ExitCode
from carpctl.cli.demote import entry_name
from carpctl.cli.status import call, check_rows, table
from carpctl.control.results import CHECK_PASSED, CheckRun

NAME = "check"
HELP = "run the health checks once now and print their results"
DESCRIPTION = """\
Ask the daemon to run every configured check (or only NAME) right away, wait
for the results and print them. The checks' debounced state (rise/fall) and
the demotion follow from these results as from any scheduled run.

Exit codes: 0 every check passed; 1 a check failed (or the daemon refused);
2 usage or config error (e.g. no check NAME); 3 the daemon is not reachable."""
TIMEOUT = 120.0  # seconds: the checks' own timeouts bound the run


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", nargs="?", type=entry_name, metavar="NAME", help="one check")


def run(args: argparse.Namespace) -> int:
    outcome: CheckRun = call(args, "check", {"name": args.name}, timeout=TIMEOUT)
    checks = outcome["checks"]
    if not checks:
        print("No checks configured.")
        return ExitCode.OK
    rows = check_rows(checks, time.time(), 0)
    print("\n".join(table(["NAME", "KIND", "STATE", "DEMOTE", "RESULT"], rows)))
    failed = [c for c in checks if c["last"] is None or c["last"]["status"] not in CHECK_PASSED]
    return ExitCode.FAILED if failed else ExitCode.OK

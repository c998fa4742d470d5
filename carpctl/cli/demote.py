"""``carpctl demote``: the operator's share of the demotion ledger."""

from __future__ import annotations

import argparse
import re
import time
from typing import Any

from carpctl.cli.common import CliError, ExitCode
from carpctl.cli.status import call, describe
from carpctl.control import protocol
from carpctl.control.results import ChangeResult

NAME = "demote"
HELP = "raise or lower this node's demotion (the operator's share of the ledger)"
DESCRIPTION = """\
  carpctl demote +50 [--reason R] [--for DURATION]
  carpctl demote -50
  carpctl demote --set N --as NAME [--reason R] [--for DURATION]

+N/-N changes the operator's share relatively, like FreeBSD's sysctl
net.inet.carp.demotion; the share never drops below 0 (-N takes back what
+N gave). With --for the change is an entry of its own that expires.
--set N --as NAME sets a named share to exactly N (idempotent; 0 removes
it), so scripts can own their share without counting. Shares survive
restarts. DURATION is 30s, 10m, 2h, 1d or plain seconds. A demotion makes
the node advertise a higher skew, so a healthier peer becomes master.

Exit codes: 0 done; 1 the daemon refused (e.g. the share would become
negative); 2 usage or config error; 3 the daemon is not reachable."""

_AMOUNT = re.compile(r"[+-]?[0-9]{1,4}")
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def amount(text: str) -> int:
    if _AMOUNT.fullmatch(text) is None or abs(int(text)) > protocol.MAX_AMOUNT:
        raise argparse.ArgumentTypeError(
            f"expected +N or -N with N up to {protocol.MAX_AMOUNT}, got {text!r}"
        )
    return int(text)


def share(text: str) -> int:
    if not text.isdigit() or int(text) > protocol.MAX_AMOUNT:
        raise argparse.ArgumentTypeError(
            f"expected a number from 0 to {protocol.MAX_AMOUNT}, got {text!r}"
        )
    return int(text)


def entry_name(text: str) -> str:
    if protocol.NAME.fullmatch(text) is None:
        raise argparse.ArgumentTypeError(
            f"expected 1-64 letters, digits, '-' and '_', got {text!r}"
        )
    return text


def duration(text: str) -> float:
    """30s, 10m, 2h, 1d or plain seconds, as seconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"expected a duration like 30s, 10m, 2h, 1d or seconds, got {text!r}"
        )
    seconds = float(match[1]) * _UNITS[match[2]]
    if not 0 < seconds <= protocol.MAX_DURATION:
        raise argparse.ArgumentTypeError(
            f"expected a duration above 0 and at most ten years, got {text!r}"
        )
    return seconds


def add_reason_and_duration(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reason", default="", metavar="R", help="why (shown by status)")
    parser.add_argument(
        "--for",
        dest="duration",
        type=duration,
        metavar="DURATION",
        help="undo by itself after DURATION (30s, 10m, 2h, 1d, seconds)",
    )


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "amount", nargs="?", type=amount, metavar="+N|-N", help="relative change of the share"
    )
    parser.add_argument("--set", type=share, metavar="N", help="set a named share to N")
    parser.add_argument("--as", dest="as_name", type=entry_name, metavar="NAME", help="its name")
    add_reason_and_duration(parser)


def optional(args: argparse.Namespace) -> dict[str, Any]:
    """The request's reason and duration, when given."""
    extra: dict[str, Any] = {"reason": args.reason} if args.reason else {}
    if args.duration is not None:
        extra["for"] = args.duration
    return extra


def run(args: argparse.Namespace) -> int:
    if args.amount is not None and (args.set is not None or args.as_name is not None):
        raise CliError(ExitCode.USAGE, "give either +N/-N or --set N --as NAME, not both")
    if args.amount is not None:
        request: dict[str, Any] = {"delta": args.amount}
        name = "the operator share"
    elif args.set is not None and args.as_name is not None:
        request = {"set": args.set, "as": args.as_name}
        name = f"operator:{args.as_name}"
    elif args.set is not None:
        raise CliError(ExitCode.USAGE, "--set needs --as NAME: the name of the share")
    elif args.as_name is not None:
        raise CliError(ExitCode.USAGE, "--as NAME goes with --set N")
    else:
        raise CliError(ExitCode.USAGE, "give +N or -N, or --set N --as NAME")
    result: ChangeResult = call(args, "demote", {**request, **optional(args)})
    entry, total = result["entry"], result["total"]
    done = f"{name} is 0" if entry is None else describe(entry, time.time())
    print(f"{done}; demotion total {total}")
    return ExitCode.OK

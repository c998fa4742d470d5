"""``carpctl reload [--dry-run] [--force]``: the running daemon re-reads its configuration."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, TypedDict

from carpctl.cli.common import CliError, ExitCode
from carpctl.cli.status import clean
from carpctl.control import client, protocol
from carpctl.daemon.config import DEFAULT_PATH, ConfigError, load
from carpctl.daemon.plan import Plan

NAME = "reload"
HELP = "make the daemon re-read its configuration (--dry-run shows what would change)"
DESCRIPTION = """\
  carpctl reload [--dry-run] [--force] [-c FILE]

Validate the configuration file here first: a file that does not load is
refused with the file, the key and what was expected, and the daemon is not
contacted, so nothing changes. Then the daemon re-reads the file it was
started with (FILE must be that file: the daemon refuses another one),
compares it with the configuration in force and prints the plan: vhids,
checks and services added, removed or changed, and changed settings.
Passwords and probe settings are never printed, only that they changed.

A change that would disrupt this node is applied only with --force: on a
vhid this node is MASTER of, removing it, moving it, removing or adding an
address, changing its password, unicast peer or virtual_mac; on a BACKUP
vhid, changing its password or addresses (it would take over while the
master still holds the addresses); and, while MASTER of any vhid, changing
the backend or setting [carp] allow = false. --dry-run prints the plan and
changes nothing.

Exit codes: 0 applied (or dry run); 1 refused as disruptive without --force,
or the daemon failed to apply it; 2 usage or config error; 3 the daemon is
not reachable."""

TIMEOUT = 30.0  # seconds: applying may add addresses and start the engine's vhids


class ReloadResult(TypedDict):
    """The daemon's answer to ``reload``."""

    applied: bool
    plan: dict[str, Any]  # Plan.to_json()
    refused: str | None  # the sentence when a disruptive plan came without force


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--dry-run", action="store_true", help="print what would change and change nothing"
    )
    parser.add_argument(
        "--force", action="store_true", help="apply even changes that would disrupt this node"
    )


def _result(value: dict[str, Any]) -> tuple[ReloadResult, Plan]:
    try:
        applied, refused = value.get("applied"), value.get("refused")
        if not isinstance(applied, bool):
            raise ValueError("result.applied: expected bool")
        if "refused" not in value or not isinstance(refused, str | None):
            raise ValueError("result.refused: expected str or null")
        plan = Plan.from_json(value.get("plan"))
    except ValueError as error:
        raise CliError(
            ExitCode.FAILED, f"the daemon's reload reply is malformed: {error}"
        ) from None
    return {"applied": applied, "plan": value["plan"], "refused": refused}, plan


def run(args: argparse.Namespace) -> int:
    path = Path(args.config) if args.config else DEFAULT_PATH
    try:
        config = load(path)
    except ConfigError as error:
        raise CliError(ExitCode.USAGE, str(error)) from None
    request = {"dry_run": args.dry_run, "force": args.force, "config": os.path.abspath(path)}
    try:
        reply = client.request(config.carpctl.control_socket, NAME, request, TIMEOUT)
    except protocol.ControlError as error:
        raise CliError(ExitCode(int(error.code)), str(error)) from None
    result, plan = _result(reply)
    print(plan.render())
    if result["refused"] is not None:
        raise CliError(ExitCode.FAILED, clean(result["refused"]))
    if result["applied"]:
        print(f"Reloaded {path}.")
    elif args.dry_run:
        force = "; applying it needs --force" if plan.disruptive else ""
        print(f"Dry run: nothing was changed{force}.")
    else:
        raise CliError(ExitCode.FAILED, "the daemon did not apply the configuration")
    return ExitCode.OK

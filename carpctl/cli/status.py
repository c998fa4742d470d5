"""``carpctl status``: what the daemon is doing, readable at a glance."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from carpctl.cli.common import CliError, ExitCode
from carpctl.control import client, protocol, results
from carpctl.control.results import CheckStatus, DemotionEntry, Status

NAME = "status"
HELP = "show the daemon's vhids, demotion ledger, checks and rejected packets"
DESCRIPTION = """\
Ask the running daemon (through the control socket named in the config) for
its state: per vhid the role, advbase, configured and effective (demoted)
skew and the master last seen; the demotion ledger, every entry with its
source, amount, age, expiry and reason, and the total; each health check's
state and last result; the packets rejected per interface and reason.
--json prints the daemon's answer as one JSON object.

Exit codes: 0 success; 1 the daemon failed to answer; 2 usage or config
error; 3 the daemon is not reachable."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def call(
    args: argparse.Namespace,
    command: str,
    request: dict[str, Any],
    timeout: float = client.DEFAULT_TIMEOUT,
) -> Any:
    """Send one request to the daemon named by ``-c``; its result, checked for shape."""
    try:
        protocol.validate_args(command, request)
        path = client.socket_path(args.config)
        return results.check_result(command, client.request(path, command, request, timeout))
    except protocol.ControlError as error:
        raise CliError(ExitCode(int(error.code)), str(error)) from None


# -- formatting helpers, shared by the operator commands -------------------------


def clean(text: str, limit: int = 0) -> str:
    """``text`` on one line, control characters replaced, cut to ``limit`` if given."""
    line = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return line[: limit - 3] + "..." if limit and len(line) > limit else line


def span(seconds: float) -> str:
    """A duration, short: 0.4s, 12s, 5m12s, 2h05m, 3d04h."""
    if seconds < 10:
        return f"{max(seconds, 0):.1f}s"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


def took(seconds: float) -> str:
    return f"{seconds * 1000:.0f}ms" if seconds < 1 else span(seconds)


def ago(at: float, now: float) -> str:
    return f"{span(now - at)} ago"


def until(at: float | None, now: float) -> str:
    return "-" if at is None else f"in {span(at - now)}"


def table(headers: list[str], rows: list[list[str]], indent: str = "") -> list[str]:
    widths = [max(len(row[i]) for row in [headers, *rows]) for i in range(len(headers))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in [headers, *rows]
    ]


def describe(entry: DemotionEntry, now: float) -> str:
    """``operator +50 (patching), expires in 10m``."""
    text = f"{entry['name']} {entry['amount']:+d}"
    if entry["reason"]:
        text += f" ({clean(entry['reason'])})"
    if entry["expires"] is not None:
        text += f", expires {until(entry['expires'], now)}"
    return text


def check_rows(checks: list[CheckStatus], now: float, detail: int) -> list[list[str]]:
    rows = []
    for check in checks:
        last = check["last"]
        if last is None:
            outcome = "not run yet"
        else:
            outcome = f"{last['status']} {ago(last['at'], now)}, took {took(last['duration'])}"
            if last["detail"]:
                outcome += f": {clean(last['detail'], detail)}"
        rows.append([check["name"], check["kind"], check["state"], f"+{check['demote']}", outcome])
    return rows


# -- status ---------------------------------------------------------------------------


def _vhids(status: Status, now: float) -> list[str]:
    if not status["vhids"]:
        return ["No vhids."]
    rows, warnings = [], []
    for v in status["vhids"]:
        seen = v["master_seen"]
        master = "-"
        if seen is not None:
            advbase = "" if seen["advbase"] == v["advbase"] else f"advbase {seen['advbase']}, "
            master = f"{seen['src']} ({advbase}skew {seen['advskew']}) {ago(seen['at'], now)}"
        rows.append(
            [
                v["name"],
                v["state"] + (" (SPLIT BRAIN)" if v["split_brain"] else ""),
                ago(v["since"], now),
                str(v["advbase"]),
                str(v["advskew"]),
                str(v["effective_skew"]),
                master,
                str(v["sent"]),
                str(v["send_errors"]),
            ]
        )
        if v["split_brain"]:
            other = f" ({seen['src']})" if seen else ""
            warnings.append(f"warning: {v['name']}: split brain, another master{other} is active")
    headers = ["VHID", "STATE", "SINCE", "ADVBASE", "SKEW", "EFFECTIVE", "MASTER SEEN"]
    return table([*headers, "SENT", "ERRORS"], rows) + warnings


def _ledger(status: Status, now: float) -> list[str]:
    demotion = status["demotion"]
    lines = [f"Demotion: {demotion['total']}"]
    if not demotion["entries"]:
        return [*lines[:1], "  no entries: the node is not demoted"]
    rows = [
        [
            e["source"],
            e["name"],
            f"{e['amount']:+d}",
            ago(e["since"], now),
            until(e["expires"], now),
            clean(e["reason"], 50),
        ]
        for e in demotion["entries"]
    ]
    headers = ["SOURCE", "NAME", "AMOUNT", "SINCE", "EXPIRES", "REASON"]
    return lines + table(headers, rows, "  ")


def _checks(status: Status, now: float) -> list[str]:
    if not status["checks"]:
        return ["Checks: none configured"]
    rows = check_rows(status["checks"], now, 60)
    return ["Checks:", *table(["NAME", "KIND", "STATE", "DEMOTE", "LAST"], rows, "  ")]


def _services(status: Status, now: float) -> list[str]:
    services = status.get("services", [])
    if not services:
        return ["Services: none configured"]
    rows = []
    for svc in services:
        last = svc.get("last")
        did = "-"
        if last:
            did = f"{last['action']} {last['result']} {ago(last['at'], now)}"
            if last.get("detail") and last["result"] != "ok":
                did += f": {last['detail']}"
        why = str(svc.get("why", ""))
        if svc.get("until"):
            why += f" (ends {until(svc['until'], now)})"
        vhids = "every vhid" if svc.get("every_vhid") else ", ".join(svc.get("vhids", []))
        rows.append([svc["name"], svc["manager"], vhids, svc["desired"], svc["actual"], why, did])
    headers = ["NAME", "MANAGER", "VHIDS", "SHOULD", "IS", "WHY", "LAST"]
    return ["Services:", *table(headers, rows, "  ")]


def _events(status: Status) -> list[str]:
    from carpctl.cli.events import render as render_event

    records = status.get("events", [])
    if not records:
        return []
    return [
        "Recent events (carpctl events for more):",
        *(f"  {render_event(r, False)}" for r in records),
    ]


def _drops(status: Status) -> list[str]:
    counted = {
        interface: ", ".join(f"{reason} {count}" for reason, count in sorted(reasons.items()))
        for interface, reasons in sorted(status["drops"].items())
        if reasons
    }
    if not counted:
        return ["Rejected packets: none"]
    return ["Rejected packets:", *(f"  {name}: {text}" for name, text in counted.items())]


def render(status: Status, now: float) -> str:
    lines = [
        f"{status['node']}: {status['backend']} backend, demotion {status['demotion']['total']}"
    ]
    for section in (
        _vhids(status, now),
        _ledger(status, now),
        _checks(status, now),
        _services(status, now),
        _drops(status),
    ):
        lines += ["", *section]
    events = _events(status)
    if events:
        lines += ["", *events]
    kernel = status["kernel"]
    if kernel is not None:
        lines += [
            "",
            f"Kernel demotion: {kernel['total']} "
            f"(carpctl's {kernel['carpctl']}, not carpctl's {kernel['other']})",
        ]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    status: Status = call(args, "status", {})
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status, time.time()))
    return ExitCode.OK

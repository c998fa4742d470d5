"""``carpctl events``: what happened, from the journal on disk (the daemon need not run)."""

from __future__ import annotations

import argparse
import json
import re
import time
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from carpctl.cli.common import CliError, ExitCode
from carpctl.cli.status import clean
from carpctl.daemon.journal_reader import JournalError, follow, read

NAME = "events"
HELP = "show what happened: transitions, demotions, checks, services (works without the daemon)"
DESCRIPTION = """\
  carpctl events [--since WHEN] [-n N] [--follow] [--json] [-c FILE]

Print the event journal kept in the config's state_dir, oldest first: every
vhid transition, demotion change, check flip, service action and daemon start
and stop, each with its sequence number and time. The journal is read from
disk, so this works while the daemon is down, and it survives restarts (the
newest few megabytes are kept). Only [carpctl] state_dir is read from the
config, so a config that does not load otherwise does not stop it.

WHEN is an ISO time (2026-11-21T03:12 or 2026-11-21 03:12:07, local time
unless it ends in Z or an offset like +01:00), a time today like 03:12, or
how long ago: 30s, 10m, 2h, 1d. -n N prints only the last N events.
--follow then keeps printing events as they are recorded, until Ctrl-C.
--json prints each event as one JSON object per line.

Exit codes: 0 success, also when there are no events yet; 1 the journal
cannot be read; 2 usage or config error."""

_AGO = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd])")
_CLOCK = re.compile(r"[0-9]{1,2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# Fields shown first, bare, in this order; then old -> new, the rest as key=value,
# and reason/detail last in parentheses.
_LEAD = ("vhid", "entry", "name", "event", "action", "result")
_WHY = ("reason", "detail")


def when(text: str, now: float | None = None) -> float:
    """``--since``: an ISO time, a time today (03:12) or an age (10m), as epoch seconds."""
    now = time.time() if now is None else now
    iso = text = text.strip()
    if match := _AGO.fullmatch(text):
        return now - float(match[1]) * _UNITS[match[2]]
    if _CLOCK.fullmatch(text):
        hours, rest = text.split(":", 1)
        iso = f"{datetime.fromtimestamp(now).date().isoformat()}T{int(hours):02d}:{rest}"
    try:
        return datetime.fromisoformat(iso).timestamp()  # naive: local time
    except (ValueError, OverflowError, OSError):
        raise argparse.ArgumentTypeError(
            "expected an ISO time (2026-11-21T03:12, Z or +01:00 for UTC or an offset), "
            f"a time today (03:12) or an age (30s, 10m, 2h, 1d), got {text!r}"
        ) from None


def count(text: str) -> int:
    if re.fullmatch(r"[0-9]{1,9}", text) is None:
        raise argparse.ArgumentTypeError(f"expected a number of events, got {text!r}")
    return int(text)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--since", type=when, metavar="WHEN", help="only events since WHEN")
    parser.add_argument("-n", type=count, dest="lines", metavar="N", help="only the last N")
    parser.add_argument("-f", "--follow", action="store_true", help="keep printing new events")
    parser.add_argument("--json", action="store_true", help="one JSON object per event")


def state_dir(config: str | None) -> Path:
    """``[carpctl] state_dir`` of the config; the default one without a default config."""
    from carpctl.daemon.config import DEFAULT_PATH, CarpctlSection

    path = Path(config) if config is not None else DEFAULT_PATH
    if config is None and not path.exists():
        return CarpctlSection.state_dir
    try:
        with open(path, "rb") as file:
            section = tomllib.load(file).get("carpctl", {})
    except OSError as error:
        raise CliError(
            ExitCode.USAGE, f"{path}: cannot read the config: {error.strerror}"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise CliError(ExitCode.USAGE, f"{path}: not valid TOML: {error}") from None
    value = (
        section.get("state_dir", str(CarpctlSection.state_dir))
        if isinstance(section, dict)
        else None
    )
    if not isinstance(value, str) or not value:
        raise CliError(ExitCode.USAGE, f"{path}: carpctl.state_dir: expected a path, got {value!r}")
    return Path(value)


def stamp(at: float) -> str:
    """Local time to the millisecond: ``2026-11-21 03:12:07.123``."""
    try:
        moment = datetime.fromtimestamp(at)
    except (ValueError, OverflowError, OSError):
        return f"(time {at!r})"
    return f"{moment:%Y-%m-%d %H:%M:%S}.{moment.microsecond // 1000:03d}"


def _text(value: Any) -> str:
    if value is None:
        return "-"
    return clean(json.dumps(value) if isinstance(value, bool) else str(value))


def summary(record: dict[str, Any]) -> str:
    """``1@eth0 BACKUP -> MASTER (master timed out)`` from the record's fields."""
    rest = {k: v for k, v in record.items() if k not in ("seq", "time", "kind")}
    parts = [_text(rest.pop(key)) for key in _LEAD if key in rest]
    if "old" in rest or "new" in rest:
        parts.append(f"{_text(rest.pop('old', None))} -> {_text(rest.pop('new', None))}")
    why = [_text(rest.pop(key)) for key in _WHY if key in rest]
    parts += [f"{key}={_text(value)}" for key, value in rest.items()]
    parts += [f"({text})" for text in why if text and text != "-"]
    return " ".join(parts)


def render(record: dict[str, Any], as_json: bool) -> str:
    if as_json:
        return json.dumps(record)
    kind = clean(record["kind"])
    return f"{stamp(record['time'])}  #{record['seq']}  {kind:<10}  {summary(record)}".rstrip()


def _show(records: Iterable[dict[str, Any]], as_json: bool) -> None:
    for record in records:
        print(render(record, as_json), flush=True)


def _tracked(records: Iterator[dict[str, Any]], last: list[int]) -> Iterator[dict[str, Any]]:
    for record in records:
        last[:] = [record["seq"]]
        yield record


def run(args: argparse.Namespace) -> int:
    directory = state_dir(args.config)
    last: list[int] = []  # the newest seq read, shown or not (-n)
    try:
        backlog = deque(_tracked(read(directory, args.since), last), maxlen=args.lines)
        _show(backlog, args.json)
        if args.follow:
            _show(follow(directory, args.since, last[0] if last else None), args.json)
        elif not backlog and not args.json and args.lines != 0:
            print("no events yet" if next(read(directory), None) is None else "no matching events")
    except JournalError as error:
        raise CliError(ExitCode.FAILED, str(error)) from None
    except KeyboardInterrupt:
        if not args.follow:
            raise
    return ExitCode.OK  # --follow ends with Ctrl-C

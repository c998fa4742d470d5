"""``carpctl event VHID@IF TYPE``: hand a devd/ifstated role change to the daemon, quickly."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path
from typing import Any

from carpctl.cli.common import CliError, ExitCode
from carpctl.control import client, protocol

NAME = "event"
HELP = "tell the daemon a vhid changed role (the devd/ifstated action target)"
DESCRIPTION = """\
  carpctl event VHID@IF TYPE

The action of a devd rule (FreeBSD) or an ifstated state (OpenBSD):
  action "carpctl event $subsystem $type";
VHID is 1-255 in decimal without leading zeros, IF an interface name of 1-15
letters, digits, '.', '_' and '-' that starts with a letter or digit, TYPE
MASTER, BACKUP or INIT in upper case, as devd sends them. Anything else is
refused before the daemon is contacted; no argument ever reaches a shell.

The event is handed to the daemon within 2 seconds and the command exits: it
never waits for services to start or stop. When the daemon is not running
the event is dropped (exit 3): on start the daemon reads every vhid's role
from the kernel and reconciles, so no event is needed to catch up.

Exit codes: 0 the daemon took the event; 1 the daemon refused it; 2 bad
arguments or config; 3 the daemon is not reachable."""

TIMEOUT = 2.0  # seconds for the whole exchange: devd runs actions one by one
VHID = re.compile(r"[1-9][0-9]{0,2}")
INTERFACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,14}")
TYPES = ("MASTER", "BACKUP", "INIT")


def configure(parser: argparse.ArgumentParser) -> None:
    # Taken as a list so a wrong count is our sentence, with the values shown safely.
    parser.usage = "%(prog)s [-c FILE] VHID@IF TYPE"
    parser.add_argument("words", nargs="*", metavar="VHID@IF TYPE", help="as devd passes them")


def _show(value: str) -> str:
    """``repr(value)``, cut short: control characters and quotes shown escaped."""
    text = ascii(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse(words: list[str]) -> dict[str, Any]:
    """The event's arguments for the control protocol; CliError (exit 2) if not valid."""
    if len(words) != 2:
        shown = ", ".join(_show(w) for w in words[:4]) + (", ..." if len(words) > 4 else "")
        got = f"got {len(words)}" + (f": {shown}" if words else "")
        raise CliError(
            ExitCode.USAGE, f"event takes exactly two arguments, VHID@IF and TYPE; {got}"
        )
    subsystem, kind = words
    number, at, interface = subsystem.partition("@")
    if not at or VHID.fullmatch(number) is None or int(number) > 255:
        raise CliError(
            ExitCode.USAGE,
            "expected VHID@IF with a vhid from 1 to 255 without leading zeros (like 1@em0), "
            f"got {_show(subsystem)}",
        )
    if INTERFACE.fullmatch(interface) is None:
        raise CliError(
            ExitCode.USAGE,
            "expected VHID@IF with an interface name of 1-15 letters, digits, '.', '_' "
            f"and '-' (like 1@em0), got {_show(subsystem)}",
        )
    if kind not in TYPES:
        raise CliError(
            ExitCode.USAGE, f"expected TYPE MASTER, BACKUP or INIT (upper case), got {_show(kind)}"
        )
    return {"vhid": int(number), "interface": interface, "type": kind}


def _socket(config: str | None) -> Path:
    """The control socket; a config that does not load still yields its socket if it can.

    An operator may be half-way through editing the config when devd fires:
    the running daemon still serves on the socket the file names.
    """
    try:
        return client.socket_path(config)
    except protocol.ControlError as error:
        socket = _lenient_socket(config)
        if socket is None:
            raise CliError(ExitCode.USAGE, str(error)) from None
        return socket


def _lenient_socket(config: str | None) -> Path | None:
    """``[carpctl] control_socket`` of a config that is TOML but otherwise invalid."""
    from carpctl.daemon.config import DEFAULT_PATH, CarpctlSection

    try:
        with open(config or DEFAULT_PATH, "rb") as file:
            section = tomllib.load(file).get("carpctl", {})
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(section, dict):
        return None
    socket = section.get("control_socket", str(CarpctlSection.control_socket))
    return Path(socket) if isinstance(socket, str) and socket else None


def run(args: argparse.Namespace) -> int:
    request = parse(args.words)
    path = _socket(args.config)
    try:
        client.request(path, NAME, request, TIMEOUT)
    except protocol.ControlError as error:
        raise CliError(ExitCode(int(error.code)), str(error)) from None
    return ExitCode.OK

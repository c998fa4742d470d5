"""``carpctl inspect FILE``: decode and verify the CARP packets of a capture."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path

from carpctl.capture.frames import LINKTYPE_NAMES, UnsupportedLinkType
from carpctl.capture.pcap import CaptureError, NotACaptureError, read_capture
from carpctl.capture.report import Credentials, Inspection, inspect_record
from carpctl.capture.summary import Tally
from carpctl.cli.common import CliError, ExitCode

NAME = "inspect"
HELP = "decode CARP packets from a pcap/pcapng file, verify checksum and HMAC"
DESCRIPTION = """\
Print every IP protocol-112 packet of a pcap or pcapng capture (tcpdump -w,
tshark, Wireshark) with its CARP fields, the checksum verdict and, given the
password and the virtual host's addresses, the HMAC verdict. A summary line
follows: counts, and per vhid the sources seen with their advbase/advskew.
Times are UTC.

The HMAC covers the vhid, every address of the virtual host and the counter:
give every address with --addr (ucarp hashes exactly one IPv4 address, its
--addr). Prefer --pass-file to --pass: a password on the command line is
visible to every user in the process list. An empty password (--pass '')
verifies kernels that have no password set. inspect reads no configuration:
-c is accepted like on every command, and ignored.

VRRP (keepalived) shares protocol 112 and the group 224.0.0.18: such packets
are shown as "not CARP" and do not make the exit code 1.

Exit codes: 0 every CARP packet is valid (and verifies, when checked);
1 a CARP packet is truncated, has a bad checksum, TTL or IP header, fails the
HMAC, or the capture is damaged part way (the packets before the damage are
shown); 2 usage error, unreadable or not a capture file.
"""


def _address(text: str) -> IPv4Address | IPv6Address:
    try:
        return ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 or IPv6 address") from None


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="pcap or pcapng capture; - reads stdin")
    add_credential_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="one JSON object per packet (JSON lines), no summary"
    )


def add_credential_arguments(parser: argparse.ArgumentParser) -> None:
    """--pass / --pass-file and --addr (also ``sniff``'s); read by ``credentials_from``."""
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument("--pass", dest="password", metavar="P", help="the CARP password")
    secret.add_argument(
        "--pass-file",
        metavar="F",
        help="read the password from the first line of F (keeps it out of process listings)",
    )
    parser.add_argument(
        "--addr",
        action="append",
        type=_address,
        default=[],
        metavar="A",
        help="an address of the virtual host, hashed into the HMAC (repeat for each)",
    )


def _read_password_file(path: str) -> bytes:
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CliError(
            ExitCode.USAGE, f"cannot read the password file {path}: {error.strerror}"
        ) from None
    return data.split(b"\n", 1)[0].removesuffix(b"\r")


def credentials_from(args: argparse.Namespace) -> Credentials | None:
    if args.password is not None:
        password: bytes | None = os.fsencode(args.password)
    elif args.pass_file is not None:
        password = _read_password_file(args.pass_file)
    else:
        password = None
    if password is None:
        if args.addr:
            raise CliError(ExitCode.USAGE, "--addr needs --pass or --pass-file")
        return None
    if not args.addr:
        raise CliError(
            ExitCode.USAGE,
            "checking the HMAC needs the virtual host's addresses: give --addr (one per address)",
        )
    return Credentials.of(password, args.addr)


def _read_capture_file(path: str) -> bytes:
    try:
        return sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as error:
        raise CliError(ExitCode.USAGE, f"cannot read {path}: {error.strerror}") from None


def format_time(time: float | None) -> str:
    if time is None:
        return "-"
    try:
        return datetime.fromtimestamp(time, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (ValueError, OverflowError, OSError):
        return f"{time:.6f}"


def render_line(inspection: Inspection) -> str:
    """One tcpdump-like line: time, src > dst, ttl, CARP fields, verdicts, problems."""
    i = inspection
    parts = [format_time(i.time), f"{i.src} > {i.dst}", f"ttl {i.ttl}:"]
    if i.carp and i.version is not None:
        kind = "advertisement" if i.type == 1 else f"type {i.type}"
        parts.append(f"CARPv{i.version} {kind}")
    for name in ("vhid", "advbase", "advskew", "demote"):
        value = getattr(i, name)
        if value is not None:
            parts.append(f"{name} {value}")
    if i.counter is not None:
        parts.append(f"counter 0x{i.counter:016x}")
    line = " ".join(parts)
    if i.checksum is not None:
        line += f"; cksum 0x{i.checksum_value or 0:04x} {i.checksum}"
    if i.carp:
        line += f"; hmac {i.hmac}"
    if i.src_mac is not None:
        line += f"; ether src {i.src_mac}"
    if i.vlans:
        line += "; vlan " + ".".join(str(vlan) for vlan in i.vlans)
    if i.problems:
        line += " -- " + "; ".join(i.problems)
    if i.notes:
        line += " (" + "; ".join(i.notes) + ")"
    return line


def render_summary(tally: Tally, frames: int, hmac_checked: bool) -> str:
    if tally.packets == 0:
        return f"summary: no protocol-112 packets in {frames} frames"
    text = (
        f"summary: {tally.carp} CARP packets, {tally.ok} ok, {tally.bad_checksum} bad checksum, "
        + (f"{tally.hmac_failures} HMAC failures" if hmac_checked else "HMAC not checked")
        + f", {tally.truncated} truncated"
    )
    if tally.not_carp:
        text += f"; {tally.not_carp} not CARP (VRRP?)"
    for vhid in sorted(tally.sources):
        sources = []
        for src, seen in tally.sources[vhid].items():
            about = f"advbase {seen.advbase}, advskew {seen.advskew}"
            if seen.hmac_bad:
                about += f", {seen.hmac_bad} HMAC bad"
            sources.append(f"{src} x{seen.packets} ({about})")
        text += f"; vhid {vhid}: " + ", ".join(sources)
    return text


def run(args: argparse.Namespace) -> int:
    if args.file == "-" and args.pass_file == "-":
        raise CliError(ExitCode.USAGE, "the capture and --pass-file cannot both come from stdin")
    credentials = credentials_from(args)
    data = _read_capture_file(args.file)
    tally = Tally()
    frames = 0
    unsupported: dict[int, int] = {}
    damage: CaptureError | None = None
    try:
        for record in read_capture(data):
            frames += 1
            try:
                inspection = inspect_record(record, credentials)
            except UnsupportedLinkType as error:
                unsupported[error.linktype] = unsupported.get(error.linktype, 0) + 1
                continue
            if inspection is None:
                continue
            tally.add(inspection)
            if args.json:
                print(json.dumps(inspection.as_json()))
            else:
                print(render_line(inspection))
    except NotACaptureError as error:
        raise CliError(ExitCode.USAGE, f"{args.file}: {error}") from None
    except CaptureError as error:
        damage = error
    if not args.json:
        print(render_summary(tally, frames, credentials is not None))
    sys.stdout.flush()
    if damage is not None:
        raise CliError(
            ExitCode.FAILED,
            f"{args.file} is damaged: {damage}; the {frames} frames before it were read",
        )
    if unsupported:
        linktype, count = next(iter(unsupported.items()))
        readable = ", ".join(sorted(set(LINKTYPE_NAMES.values())))
        raise CliError(
            ExitCode.FAILED,
            f"{count} frames have link type {linktype}, which carpctl cannot read "
            f"(it reads {readable})",
        )
    return ExitCode.FAILED if tally.failed else ExitCode.OK

"""``carpctl sniff -i IFACE``: a live view of the CARP traffic on an interface."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from types import FrameType

from carpctl.capture import live
from carpctl.capture.live import Capture, NoSuchInterface, Sightings, SourceSeen, Tick
from carpctl.cli.common import CliError, ExitCode
from carpctl.cli.inspect import add_credential_arguments, credentials_from, render_line

NAME = "sniff"
HELP = "show the CARP advertisements on an interface live, with checksum and HMAC verdicts"
DESCRIPTION = """\
Capture IP protocol 112 on one interface and print every packet as
carpctl inspect does: who advertises which vhid, with what advbase, advskew
and demote, the TTL, the Ethernet source, the checksum verdict and, given
the password and the virtual host's addresses (--pass or --pass-file, and
--addr for each address), the HMAC verdict. At the end (Ctrl-C, SIGTERM,
--count or --timeout) a summary follows: per vhid, each source seen with
its packets, last values, how often it advertised, and when it was last
seen; --every S prints it every S seconds too. Times are UTC.

--json prints one JSON object per packet (the same fields as inspect
--json) and, for each summary, one object whose only key is "summary".

The capture is a packet socket with a kernel filter for protocol 112: no
tcpdump is needed, and other traffic costs nothing. It also shows what
this host sends. The interface is put in promiscuous mode only with
--promisc (to see unicast advertisements between two other hosts). Linux
only; needs root (CAP_NET_RAW). On the BSDs, capture with tcpdump -w and
read the file with carpctl inspect. sniff reads no configuration: -c is
accepted like on every command, and ignored.

Exit codes: 0 the capture ran until its end (Ctrl-C, SIGTERM, --count,
--timeout), whatever the packets' verdicts; 1 capturing is not possible
(not root) or failed part way; 2 usage error or unknown interface.
"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 1e9:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-i", "--interface", required=True, metavar="IFACE", help="the interface to listen on"
    )
    add_credential_arguments(parser)
    parser.add_argument(
        "--json", action="store_true", help="JSON lines: one object per packet and per summary"
    )
    parser.add_argument(
        "--count", type=_positive_int, metavar="N", help="stop after N protocol-112 packets"
    )
    parser.add_argument("--timeout", type=_seconds, metavar="S", help="stop after S seconds")
    parser.add_argument(
        "--every", type=_seconds, metavar="S", help="print the summary every S seconds too"
    )
    parser.add_argument(
        "--promisc", action="store_true", help="put the interface in promiscuous mode meanwhile"
    )


class _Stop(Exception):
    """SIGINT or SIGTERM arrived."""


@contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGINT and SIGTERM end the capture (even if SIGINT was ignored, like tcpdump)."""

    def stop(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open(args: argparse.Namespace) -> Capture:
    if not hasattr(socket, "AF_PACKET"):
        raise CliError(
            ExitCode.FAILED,
            "sniff needs Linux packet sockets: capture with tcpdump -w and read the file "
            "with carpctl inspect",
        )
    try:
        return Capture(args.interface, promisc=args.promisc)
    except NoSuchInterface as error:
        raise CliError(ExitCode.USAGE, str(error)) from None
    except PermissionError:
        raise CliError(
            ExitCode.FAILED, "capturing packets needs root (CAP_NET_RAW): run sniff as root"
        ) from None
    except OSError as error:
        raise CliError(
            ExitCode.FAILED, f"cannot capture on {args.interface}: {error.strerror or error}"
        ) from None


def _clock(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%H:%M:%S.%f")[:-3]


def _seconds_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def render_source(seen: SourceSeen, now: float) -> str:
    mac = f" ({seen.src_mac})" if seen.src_mac else ""
    text = (
        f"{seen.src}{mac} x{seen.packets}: advbase {seen.advbase}, advskew {seen.advskew}, "
        f"demote {seen.demote}, ttl {seen.ttl}, hmac {seen.hmac}"
    )
    if seen.hmac_bad and seen.hmac_ok:
        text += f" ({seen.hmac_bad} bad, {seen.hmac_ok} ok)"
    if seen.problems:
        text += f", {seen.problems} with problems"
    text += (
        f"; every {_seconds_text(seen.interval)} "
        f"(announced {_seconds_text(seen.expected_interval)}); "
        f"last seen {_clock(seen.last)} ({max(0.0, now - seen.last):.1f} s ago)"
    )
    return text


def render_summary(sightings: Sightings, capture: Capture, now: float, hmac_checked: bool) -> str:
    t = sightings.tally
    lines = [
        f"summary: {t.carp} CARP packets on {capture.interface} in "
        f"{max(0.0, now - sightings.started):.1f} s, {t.ok} ok, {t.bad_checksum} bad checksum, "
        + (f"{t.hmac_failures} HMAC failures" if hmac_checked else "HMAC not checked")
        + f", {t.truncated} truncated"
        + (f"; {t.not_carp} not CARP (VRRP?)" if t.not_carp else "")
        + (f"; {capture.drops} dropped by the kernel (reading too slowly)" if capture.drops else "")
    ]
    for vhid in sorted(sightings.vhids):
        latest = sightings.latest(vhid)
        lines.append(f"  vhid {vhid}: last advertised by {latest.src}")
        lines.extend(f"    {render_source(seen, now)}" for seen in sightings.vhids[vhid].values())
    return "\n".join(lines)


def summary_json(sightings: Sightings, capture: Capture, now: float) -> dict[str, object]:
    return {
        "summary": {
            "interface": capture.interface,
            "frames": capture.frames,
            "drops": capture.drops,
            "kernel_filter": capture.kernel_filter,
            **sightings.as_json(now),
        }
    }


def run(args: argparse.Namespace) -> int:
    credentials = credentials_from(args)
    with _open(args) as capture:
        sightings = Sightings(started=time.time())
        if not args.json:
            print(
                f"carpctl: listening on {capture.interface} for CARP (IP protocol 112), "
                "Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )

        def summary() -> None:
            capture.statistics()  # collects the kernel's drop count
            now = time.time()
            if args.json:
                print(json.dumps(summary_json(sightings, capture, now)), flush=True)
            else:
                print(render_summary(sightings, capture, now, credentials is not None), flush=True)

        failure: OSError | None = None
        with _stopped_by_signals():
            try:
                for event in live.watch(
                    capture,
                    sightings,
                    credentials=credentials,
                    count=args.count,
                    timeout=args.timeout,
                    every=args.every,
                ):
                    if isinstance(event, Tick):
                        summary()
                    elif args.json:
                        print(json.dumps(event.as_json()), flush=True)
                    else:
                        print(render_line(event), flush=True)
            except _Stop:
                pass
            except BrokenPipeError:
                raise
            except OSError as error:  # the interface went away, ...
                failure = error
        summary()
    if failure is not None:
        raise CliError(
            ExitCode.FAILED,
            f"the capture on {args.interface} stopped: {failure.strerror or failure}",
        )
    return ExitCode.OK

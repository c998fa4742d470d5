"""pfsync: ``ifconfig <interface>`` shows pfsync configured, up and (where shown) in sync.

``ifconfig`` is run as an argv list (never a shell), found on PATH unless
the spec names a path. Its output (carp-protocol.md section 6.4) is read
the same way for every system:

* the ``<interface>: flags=<hex><LIST>`` line must be there, else the
  output is unrecognised (FAILURE); without ``UP`` in the list (or without
  a list) the interface is down (FAILURE);
* ``syncdev: <if>`` must appear, either bare (FreeBSD 13 and 14+) or after
  ``pfsync:`` (FreeBSD <= 12 and OpenBSD); without it pfsync is not
  configured (FAILURE) -- FreeBSD 14 prints ``syncok`` even then, and
  OpenBSD prints no pfsync line at all;
* ``syncok: 0`` means a bulk update is outstanding (FAILURE); ``syncok: 1``
  passes; any other value is unrecognised (FAILURE);
* no ``syncok`` line at all (FreeBSD <= 12, OpenBSD: they have no such
  indicator) passes, and the detail says the bulk state is not shown;
* ``syncpeer`` and ``version`` are reported in the detail, never judged.

A non-zero exit (no such interface) fails with ifconfig's last stderr line.
"""

from __future__ import annotations

import re
import shutil
import subprocess

from carpctl.health.params import PfsyncParams
from carpctl.health.result import CheckResult

SYNCDEV = re.compile(r"(?:^|\s)syncdev: (\S+)")
SYNCPEER = re.compile(r"(?:^|\s)syncpeer: (\S+)")
SYNCOK = re.compile(r"^\s*syncok: (\S+)\s*$", re.MULTILINE)
VERSION = re.compile(r"(?:^|\s)version: (\d+)")


def probe(params: PfsyncParams, timeout: float) -> CheckResult:
    program = shutil.which(params.ifconfig)
    if program is None:
        return CheckResult.failure(f"{params.ifconfig} not found (or not executable)")
    try:
        done = subprocess.run(
            [program, params.interface],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return CheckResult.timeout(f"{program} {params.interface} took over {timeout:g} s")
    except OSError as error:
        return CheckResult.failure(f"cannot run {program}: {error.strerror or error}")
    if done.returncode != 0:
        why = (done.stderr.strip().splitlines() or [""])[-1]
        return CheckResult.failure(
            f"{program} {params.interface} exited with {done.returncode}: {why}".rstrip(": ")
        )
    return parse(done.stdout, params.interface)


def parse(output: str, interface: str) -> CheckResult:
    """Judge ``ifconfig <interface>`` output (see the module docstring)."""
    header = re.search(
        rf"^{re.escape(interface)}: flags=[0-9a-fA-F]+(?:<([^>]*)>)?", output, re.MULTILINE
    )
    if header is None:
        return CheckResult.failure(f"unrecognised ifconfig output: no '{interface}: flags=' line")
    flags = header.group(1) or ""
    if "UP" not in flags.split(","):
        return CheckResult.failure(f"{interface} is down (flags <{flags}>)")
    syncdev = SYNCDEV.search(output)
    if syncdev is None:
        return CheckResult.failure(f"{interface} has no syncdev: pfsync is not configured")
    facts = [f"syncdev {syncdev.group(1)}"]
    if peer := SYNCPEER.search(output):
        facts.append(f"syncpeer {peer.group(1)}")
    if version := VERSION.search(output):
        facts.append(f"version {version.group(1)}")
    syncok = SYNCOK.search(output)
    if syncok is None:
        return CheckResult.ok(", ".join([*facts, "bulk update state not shown by this system"]))
    if syncok.group(1) == "0":
        return CheckResult.failure(", ".join([*facts, "bulk update outstanding (syncok: 0)"]))
    if syncok.group(1) != "1":
        return CheckResult.failure(f"unrecognised syncok value {syncok.group(1)!r}")
    return CheckResult.ok(", ".join([*facts, "in sync (syncok: 1)"]))

"""pfsync probes against fake ifconfig programs printing each system's format and state.

The outputs follow carp-protocol.md section 6.4: FreeBSD 14+ (syncdev line
with version, syncok line), FreeBSD 13 (no version), FreeBSD <= 12 and
OpenBSD (``pfsync: syncdev: ...``, no syncok).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from carpctl.core.checkstate import Result
from carpctl.health.kinds import pfsync, probe

from .conftest import spec_of

UP = "pfsync0: flags=41<UP,RUNNING> metric 0 mtu 1500\n"
DOWN = "pfsync0: flags=0<> metric 0 mtu 1500\n"
FBSD14 = "\tsyncdev: em1 syncpeer: 198.51.100.2 maxupd: 128 defer: off version: 1400\n"
FBSD14_DEFAULT_PEER = "\tsyncdev: em1 maxupd: 128 defer: off version: 1400\n"
FBSD14_UNCONFIGURED = "\tmaxupd: 128 defer: off version: 1400\n"
FBSD13 = "\tsyncdev: em1 syncpeer: 198.51.100.2 maxupd: 128 defer: off\n"
OLD = "\tpfsync: syncdev: em1 syncpeer: 198.51.100.2 maxupd: 128 defer: off\n"
GROUPS = "\tgroups: pfsync\n"
OPENBSD_UP = "pfsync0: flags=41<UP,RUNNING> mtu 1500\n\tindex 5 priority 0 llprio 3\n"

CASES = {
    # name: (ifconfig output, status, detail)
    "freebsd14 in sync": (
        UP + FBSD14 + "\tsyncok: 1\n" + GROUPS,
        Result.OK,
        "syncdev em1, syncpeer 198.51.100.2, version 1400, in sync (syncok: 1)",
    ),
    "freebsd14 default peer": (
        UP + FBSD14_DEFAULT_PEER + "\tsyncok: 1\n" + GROUPS,
        Result.OK,
        "syncdev em1, version 1400, in sync (syncok: 1)",
    ),
    "freebsd14 bulk update outstanding": (
        UP + FBSD14 + "\tsyncok: 0\n" + GROUPS,
        Result.FAILURE,
        "syncdev em1, syncpeer 198.51.100.2, version 1400, bulk update outstanding (syncok: 0)",
    ),
    "freebsd14 no syncdev": (
        UP + FBSD14_UNCONFIGURED + "\tsyncok: 1\n" + GROUPS,
        Result.FAILURE,
        "pfsync0 has no syncdev: pfsync is not configured",
    ),
    "freebsd14 down": (
        DOWN + FBSD14 + "\tsyncok: 1\n" + GROUPS,
        Result.FAILURE,
        "pfsync0 is down (flags <>)",
    ),
    "freebsd13 in sync": (
        UP + FBSD13 + "\tsyncok: 1\n" + GROUPS,
        Result.OK,
        "syncdev em1, syncpeer 198.51.100.2, in sync (syncok: 1)",
    ),
    "freebsd13 bulk update outstanding": (
        UP + FBSD13 + "\tsyncok: 0\n" + GROUPS,
        Result.FAILURE,
        "syncdev em1, syncpeer 198.51.100.2, bulk update outstanding (syncok: 0)",
    ),
    "freebsd12 configured": (
        UP + OLD + GROUPS,
        Result.OK,
        "syncdev em1, syncpeer 198.51.100.2, bulk update state not shown by this system",
    ),
    "freebsd12 no syncdev": (
        UP + "\tpfsync: maxupd: 128 defer: off\n" + GROUPS,
        Result.FAILURE,
        "pfsync0 has no syncdev: pfsync is not configured",
    ),
    "openbsd configured": (
        OPENBSD_UP + OLD + "\tgroups: carp pfsync\n",
        Result.OK,
        "syncdev em1, syncpeer 198.51.100.2, bulk update state not shown by this system",
    ),
    "openbsd no syncdev": (
        OPENBSD_UP + "\tgroups: carp pfsync\n",
        Result.FAILURE,
        "pfsync0 has no syncdev: pfsync is not configured",
    ),
    "openbsd down": (
        "pfsync0: flags=0<> mtu 1500\n" + OLD,
        Result.FAILURE,
        "pfsync0 is down (flags <>)",
    ),
    "running but not up": (
        "pfsync0: flags=40<RUNNING> metric 0 mtu 1500\n" + FBSD14 + "\tsyncok: 1\n",
        Result.FAILURE,
        "pfsync0 is down (flags <RUNNING>)",
    ),
    "odd syncok": (
        UP + FBSD14 + "\tsyncok: yes\n",
        Result.FAILURE,
        "unrecognised syncok value 'yes'",
    ),
    "garbage": (
        "something else entirely\n",
        Result.FAILURE,
        "unrecognised ifconfig output: no 'pfsync0: flags=' line",
    ),
}

FAKE = """#!{python}
import sys, time
if sys.argv[1:] != [{interface!r}]:
    print("fake ifconfig: unexpected arguments", sys.argv[1:], file=sys.stderr)
    sys.exit(1)
time.sleep({sleep})
sys.stdout.write({output!r})
sys.stderr.write({stderr!r})
sys.exit({code})
"""


def fake_ifconfig(
    directory: Path,
    output: str,
    *,
    code: int = 0,
    stderr: str = "",
    sleep: float = 0,
    interface: str = "pfsync0",
    name: str = "ifconfig",
) -> Path:
    path = directory / name
    path.write_text(
        FAKE.format(
            python=sys.executable,
            interface=interface,
            output=output,
            stderr=stderr,
            code=code,
            sleep=sleep,
        )
    )
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("case", list(CASES))
def test_each_format_and_state_through_a_fake_ifconfig(case: str, tmp_path: Path) -> None:
    output, status, detail = CASES[case]
    program = fake_ifconfig(tmp_path, output)
    result = probe(spec_of(kind="pfsync", ifconfig=str(program)))
    assert (result.status, result.detail) == (status, detail)
    assert pfsync.parse(output, "pfsync0") == result  # the parser alone says the same


def test_ifconfig_is_looked_up_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ifconfig(tmp_path, UP + FBSD14 + "\tsyncok: 1\n")
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert probe(spec_of(kind="pfsync")).status is Result.OK
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    result = probe(spec_of(kind="pfsync"))
    assert (result.status, result.detail) == (
        Result.FAILURE,
        "ifconfig not found (or not executable)",
    )


def test_another_interface_and_a_missing_one(tmp_path: Path) -> None:
    output = UP.replace("pfsync0", "pfsync1") + FBSD14 + "\tsyncok: 1\n"
    program = fake_ifconfig(tmp_path, output, interface="pfsync1")
    assert probe(spec_of(kind="pfsync", interface="pfsync1", ifconfig=str(program))).status is (
        Result.OK
    )
    missing = fake_ifconfig(
        tmp_path,
        "",
        code=1,
        stderr="ifconfig: interface pfsync0 does not exist\n",
        name="ifconfig-missing",
    )
    result = probe(spec_of(kind="pfsync", ifconfig=str(missing)))
    assert (result.status, result.detail) == (
        Result.FAILURE,
        f"{missing} pfsync0 exited with 1: ifconfig: interface pfsync0 does not exist",
    )


def test_a_hanging_ifconfig_times_out(tmp_path: Path) -> None:
    program = fake_ifconfig(tmp_path, UP + FBSD14 + "\tsyncok: 1\n", sleep=30)
    started = time.monotonic()
    result = probe(spec_of(kind="pfsync", ifconfig=str(program), timeout=0.5))
    assert (result.status, result.detail) == (
        Result.TIMEOUT,
        f"{program} pfsync0 took over 0.5 s",
    )
    assert time.monotonic() - started < 3

"""file probes on real paths; link probes on lo and on interfaces inside a namespace we make."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from netns import Lab, unavailable_reason

from carpctl.core.checkstate import Result
from carpctl.health.kinds import link, probe
from carpctl.health.spec import LinkParams

from .conftest import spec_of


def test_file_exists_and_maintenance_flag(tmp_path: Path) -> None:
    flag = tmp_path / "down"
    present = spec_of(kind="file", path=str(flag))
    absent = spec_of(kind="file", path=str(flag), exists=False)
    assert (probe(present).status, probe(absent).status) == (Result.FAILURE, Result.OK)
    assert probe(present).detail == f"{flag} does not exist"
    flag.touch()
    assert (probe(present).status, probe(absent).status) == (Result.OK, Result.FAILURE)
    assert probe(absent).detail == f"{flag} exists (the check passes while it does not)"


def test_file_dangling_links_and_paths_through_a_file(tmp_path: Path) -> None:
    dangling = tmp_path / "link"
    dangling.symlink_to(tmp_path / "nowhere")
    assert probe(spec_of(kind="file", path=str(dangling))).status is Result.FAILURE
    regular = tmp_path / "regular"
    regular.touch()
    through = spec_of(kind="file", path=str(regular / "below"), exists=False)
    assert probe(through).status is Result.OK  # ENOTDIR: it does not exist


def test_link_loopback() -> None:
    result = probe(spec_of(kind="link", interface="lo"))
    assert (result.status, result.detail) == (
        Result.OK,
        "lo is up with carrier (operstate unknown)",
    )
    missing = probe(spec_of(kind="link", interface="nosuchif0"))
    assert (missing.status, missing.detail) == (Result.FAILURE, "no interface nosuchif0")


@pytest.mark.parametrize(
    "case",
    [
        ("0x1003", "1", "up", Result.OK, "eth9 is up with carrier (operstate up)"),
        ("0x1002", None, "down", Result.FAILURE, "eth9 is administratively down"),
        ("0x1003", "0", "lowerlayerdown", Result.FAILURE, "eth9 has no carrier (operstate "
         "lowerlayerdown)"),
        ("0x1003", "1", "dormant", Result.FAILURE, "eth9 is dormant"),
        ("0x1003", "1", "testing", Result.FAILURE, "eth9 is testing"),
        ("0x1003", None, "up", Result.FAILURE, "eth9 has no carrier (operstate up)"),
        ("zz", "1", "up", Result.FAILURE, None),
    ],
)  # fmt: skip
def test_link_reading_rules_on_a_sysfs_copy(
    tmp_path: Path, case: tuple[str, str | None, str, Result, str | None]
) -> None:
    """The rules, on files shaped like /sys/class/net/<if>/ (None: carrier unreadable)."""
    flags, carrier, operstate, status, detail = case
    directory = tmp_path / "eth9"
    directory.mkdir()
    (directory / "flags").write_text(flags + "\n")
    (directory / "operstate").write_text(operstate + "\n")
    if carrier is not None:
        (directory / "carrier").write_text(carrier + "\n")
    result = link.probe(LinkParams("eth9"), sysfs=tmp_path)
    assert result.status is status
    if detail is not None:
        assert result.detail == detail
    not_linux = link.probe(LinkParams("eth9"), sysfs=tmp_path / "absent")
    assert not_linux.detail == f"link checks read {tmp_path / 'absent'}, which only Linux has"


# -- real interfaces, inside a namespace this test makes ----------------------

PROBE_IN_NAMESPACE = """
import json, sys
from carpctl.health.kinds import link
from carpctl.health.spec import LinkParams
result = link.probe(LinkParams(sys.argv[1]))
print(json.dumps([str(result.status), result.detail]))
"""


@pytest.fixture
def lab() -> Iterator[Lab]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Lab("hl") as made:
        yield made


def probe_in(lab: Lab, namespace: str, interface: str) -> tuple[str, str]:
    """Run the link probe inside ``namespace``: ``ip netns exec`` mounts its own /sys."""
    done = lab.run(namespace, [sys.executable, "-c", PROBE_IN_NAMESPACE, interface])
    assert done.returncode == 0, done.stderr
    status, detail = json.loads(done.stdout)
    return status, detail


@pytest.mark.netns
def test_link_on_veth_and_loopback_interfaces_in_a_namespace(lab: Lab) -> None:
    ns = lab.namespace("a")
    lab.ip(ns, "link", "add", "lab0", "type", "veth", "peer", "name", "lab1")
    assert probe_in(lab, ns, "lab0") == ("failure", "lab0 is administratively down")
    lab.set_link(ns, "lab0", up=True)
    # no carrier while the other end is down
    assert probe_in(lab, ns, "lab0") == (
        "failure",
        "lab0 has no carrier (operstate lowerlayerdown)",
    )
    lab.set_link(ns, "lab1", up=True)
    result = probe_in(lab, ns, "lab0")
    for _ in range(50):  # operstate may take a moment to follow the carrier
        if result[0] == "ok":
            break
        time.sleep(0.05)
        result = probe_in(lab, ns, "lab0")
    assert result == ("ok", "lab0 is up with carrier (operstate up)")
    lab.set_link(ns, "lab1", up=False)
    assert probe_in(lab, ns, "lab0")[0] == "failure"

    assert probe_in(lab, ns, "lo") == ("ok", "lo is up with carrier (operstate unknown)")
    lab.ip(ns, "link", "set", "lo", "down")  # the namespace's own loopback
    assert probe_in(lab, ns, "lo") == ("failure", "lo is administratively down")
    assert probe_in(lab, ns, "eth0") == ("failure", "no interface eth0")  # not the root's eth0

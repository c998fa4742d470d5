"""``carpctl sniff`` on a real lab: what the client's lab0 carries, as the nodes send it.

Two carpctl nodes and a client (198.51.100.0/24, namespaces made and torn
down by the ``make_lab`` fixture); sniff runs in the client's namespace only.
"""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nodeconfigs import write_config

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for
from carpctl.lab.state import write_secret
from carpctl.lab.topology import carpctl_command

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
NODE1, NODE2 = "198.51.100.1", "198.51.100.2"


def sniff_argv(lab: Cluster, *extra: str) -> list[str]:
    auth = ["--pass-file", lab.state.password_file, "--addr", VIP]
    return [*carpctl_command(), "sniff", "-i", "lab0", "--json", *auth, *extra]


def objects(log: Path) -> list[dict[str, Any]]:
    """The JSON lines written so far (a line still being written is left out)."""
    text = log.read_text() if log.exists() else ""
    return [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]


def adverts_from(found: list[dict[str, Any]], src: str) -> list[dict[str, Any]]:
    return [o for o in found if o.get("src") == src]


def test_sniff_follows_a_failover_and_ctrl_c_ends_it_with_the_summary(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    lab = make_lab(nodes=2)
    assert lab.wait_role("node1", "MASTER", 10)
    log = tmp_path / "sniff.log"
    process = lab.spawn("client", sniff_argv(lab), "sniff", log)
    assert wait_for(lambda: len(adverts_from(objects(log), NODE1)) >= 2, 5, 0.05)
    lab.fail("node1", FailMode.STOP)  # hung: node2 takes over once node1 goes quiet
    assert wait_for(lambda: len(adverts_from(objects(log), NODE2)) >= 2, 10, 0.05)
    process.send_signal(signal.SIGINT)  # Ctrl-C
    assert process.wait(5) == 0

    found = objects(log)  # every line is JSON: no traceback, nothing on stderr
    assert len(found) == len(log.read_text().splitlines())
    *packets, last = found
    assert [o["src"] for o in packets] == sorted(o["src"] for o in packets)  # .1, then .2
    macs = {NODE1: lab.host("node1").mac, NODE2: lab.host("node2").mac}
    for packet in packets:
        assert (packet["vhid"], packet["ttl"], packet["dst"]) == (1, 255, "224.0.0.18")
        assert (packet["checksum"], packet["hmac"], packet["ok"]) == ("ok", "ok", True)
        assert packet["src_mac"] == macs[packet["src"]]
    assert {o["advskew"] for o in adverts_from(packets, NODE2)} == {100}

    summary = last["summary"]
    assert summary["kernel_filter"] is True
    # The filter kept the rest of lab0's traffic (node2's gratuitous ARP ...) in the kernel.
    assert summary["frames"] == summary["packets"] == len(packets)
    (vhid,) = summary["vhids"]
    assert (vhid["vhid"], vhid["latest"]) == (1, NODE2)
    seen = {s["src"]: s for s in vhid["sources"]}
    assert set(seen) == {NODE1, NODE2}
    assert seen[NODE1]["interval"] == pytest.approx(1.0, abs=0.2)
    assert (seen[NODE2]["hmac_ok"], seen[NODE2]["hmac_bad"]) == (seen[NODE2]["packets"], 0)


def test_a_node_with_another_password_is_flagged_and_only_root_may_sniff(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2, start=False)
    other = lab.store.path / "other-password"
    write_secret(other, "not-the-lab-one")
    write_config(lab, "node2", [(1, 100, f"{VIP}/24")], password_file=str(other))
    lab.start("node1")
    lab.start("node2")

    # While the nodes elect: the refusals, in the client's namespace.
    nobody = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups"]
    sniff = [*carpctl_command(), "sniff", "-i", "lab0", "--timeout", "2"]
    refused = lab.exec("client", [*nobody, *sniff])  # (nobody cannot read the password file)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert refused.stderr == (
        "carpctl: capturing packets needs root (CAP_NET_RAW): run sniff as root\n"
    )
    unknown = lab.exec("client", [*sniff[:-4], "-i", "lab9", "--timeout", "2"])
    assert (unknown.returncode, unknown.stdout) == (2, "")
    assert unknown.stderr == (
        "carpctl: there is no interface named 'lab9' in this network namespace\n"
    )

    # node2 cannot verify node1, so it makes itself master too: both advertise.
    assert lab.wait_role("node1", "MASTER", 10)
    assert lab.wait_role("node2", "MASTER", 10)
    done = lab.exec("client", sniff_argv(lab, "--count", "6", "--timeout", "10"), timeout=20)
    assert (done.returncode, done.stderr) == (0, "")
    *packets, last = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(packets) == 6
    good, bad = adverts_from(packets, NODE1), adverts_from(packets, NODE2)
    assert good
    assert bad
    assert {p["hmac"] for p in good} == {"ok"}
    assert {p["hmac"] for p in bad} == {"bad"}
    assert all(p["checksum"] == "ok" and not p["ok"] for p in bad)
    assert all("HMAC does not verify" in p["problems"][0] for p in bad)
    assert last["summary"]["hmac_failures"] == len(bad)

"""virtual_mac = true: the address answers with 00:00:5e:00:01:<vhid> wherever it is."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from nodeconfigs import current, write_config

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns

VIP = "198.51.100.100"
VMAC = "00:00:5e:00:01:01"


def test_the_virtual_mac_follows_the_master_so_clients_keep_their_arp_entry(
    make_lab: Callable[..., Cluster],
) -> None:
    lab = make_lab(nodes=2, start=False)
    write_config(lab, "node1", [(1, 0, f"{VIP}/24")], virtual_mac=True)
    write_config(lab, "node2", [(1, 100, f"{VIP}/24")], virtual_mac=True)
    lab.start("node1")
    lab.start("node2")
    assert wait_for(lambda: current(lab, "node1") == {1: "MASTER"}, 10.0)
    assert wait_for(lambda: current(lab, "node2") == {1: "BACKUP"}, 10.0)
    view = lab.client_view(VIP)
    assert view.reachable
    assert view.mac == VMAC
    links = lab.exec("node2", ["ip", "-br", "link"]).stdout
    assert "carp1." in links
    assert VMAC in links  # node2 has the interface too, down while BACKUP
    lab.fail("node1", FailMode.KILL)
    assert wait_for(lambda: current(lab, "node2") == {1: "MASTER"}, 10.0)
    assert wait_for(lambda: lab.client_view(VIP).reachable, 5.0)
    assert lab.client_view(VIP).mac == VMAC
    lab.fail("node2", FailMode.TERM)  # a graceful stop removes the interface
    assert wait_for(lambda: "carp1." not in lab.exec("node2", ["ip", "-br", "link"]).stdout, 5.0)

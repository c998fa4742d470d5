"""carpctl events --follow shows a failover as it happens."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from carpctl.lab import Cluster, FailMode
from carpctl.lab.netns import wait_for

pytestmark = pytest.mark.netns


def followed(path: Path) -> list[dict[str, object]]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def test_events_follow_shows_the_takeover_live(
    make_lab: Callable[..., Cluster], tmp_path: Path
) -> None:
    lab = make_lab(nodes=2)
    assert lab.wait_role("node1", "MASTER", 10.0)
    assert lab.wait_role("node2", "BACKUP", 10.0)
    out = tmp_path / "follow.jsonl"
    argv = [sys.executable, "-m", "carpctl", "-c", lab.host("node2").config, "events"]
    lab.spawn("node2", [*argv, "--follow", "--json", "--since", "1s"], "follow", log=out)
    lab.fail("node1", FailMode.TERM)  # node2 takes over on the bow-out

    def takeover() -> bool:
        return any(
            r.get("kind") == "transition" and r.get("new") == "MASTER" for r in followed(out)
        )

    assert wait_for(takeover, 5.0), out.read_text()
    record = next(r for r in followed(out) if r.get("new") == "MASTER")
    assert (record["vhid"], record["old"], record["reason"]) == (
        "1@lab0",
        "BACKUP",
        "bow-out received",
    )

"""``carpctl lab demo``: a CARP failover told in about half a minute.

Two nodes elect a master, the client pings the virtual address every 10 ms,
the master crashes, the backup takes over (the time until the client's
first reply is measured, not assumed), the old master comes back and takes
its place again (preempt), and a graceful stop shows what the bow-out
advertisement buys. The lab is removed at the end, also after a failure or
Ctrl-C.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from carpctl.lab import logs
from carpctl.lab.netns import LabError
from carpctl.lab.probe import Prober, Reply
from carpctl.lab.process import ProcessRef
from carpctl.lab.state import DEFAULT_ROOT
from carpctl.lab.teardown import lab_names, teardown
from carpctl.lab.topology import Cluster, FailMode, LabOptions

Say = Callable[[str], None]

ELECTION_TIMEOUT = 10.0
TAKEOVER_TIMEOUT = 15.0


@dataclass
class DemoResult:
    """What the demo measured (milliseconds)."""

    election_ms: float | None = None
    takeover_ms: float | None = None  # crash -> client's first reply
    takeover_log_ms: float | None = None  # crash -> node2's "MASTER" log line
    lost_replies: int = 0  # requests unanswered during the takeover
    handback_gap_ms: float | None = None  # longest client gap while node1 took back over
    graceful_ms: float | None = None  # SIGTERM -> client's first reply through node2
    notes: list[str] = field(default_factory=list)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


DEMO_NAME = re.compile(r"demo[0-9]+")


def demo_name() -> str:
    """A lab name of this process's own: demos running side by side never collide."""
    return f"demo{os.getpid()}"


def remove_abandoned_demos(root: Path = DEFAULT_ROOT) -> list[str]:
    """Remove the demo labs whose demo process is gone (killed before it cleaned up)."""
    removed = []
    for name in lab_names(root):
        if not DEMO_NAME.fullmatch(name):
            continue
        try:
            alive = Cluster.attach(name, root).owner_alive()
        except LabError:  # no state (yet): the name holds the demo's PID
            alive = ProcessRef.of(int(name.removeprefix("demo"))) is not None
        if not alive:
            teardown(name, root)
            removed.append(name)
    return removed


class Demo:
    def __init__(self, say: Say, name: str | None = None, root: Path = DEFAULT_ROOT) -> None:
        self.name, self.root = name or demo_name(), root
        self._say = say
        self.start = time.monotonic()
        self.result = DemoResult()
        self.lab: Cluster | None = None

    def say(self, text: str) -> None:
        self._say(f"{time.monotonic() - self.start:5.1f}s  {text}")

    # -- helpers ------------------------------------------------------------

    def _wait_role(
        self, node: str, role: str, timeout: float = ELECTION_TIMEOUT
    ) -> logs.RoleChange:
        assert self.lab is not None
        if not self.lab.wait_role(node, role, timeout):
            tail = " | ".join(logs.tail(self.lab.log(node), 3)) or "(empty log)"
            raise LabError(f"{node} did not become {role} within {timeout:g} s; its log: {tail}")
        change = logs.last_role(self.lab.log(node))
        assert change is not None
        return change

    def _owner(self, reply: Reply) -> str:
        assert self.lab is not None
        return self.lab.owner_of(reply.mac) or reply.mac or "?"

    @staticmethod
    def _wall(monotonic: float) -> float:
        """A ``time.monotonic()`` instant on the wall clock (log timestamps)."""
        return time.time() - (time.monotonic() - monotonic)

    @staticmethod
    def _longest_gap(replies: list[Reply]) -> float:
        times = sorted(r.received for r in replies)
        return max((b - a for a, b in itertools.pairwise(times)), default=0.0)

    # -- the story ----------------------------------------------------------

    def run(self) -> DemoResult:
        for name in remove_abandoned_demos(self.root):
            self.say(f"removed lab {name}, left behind by a demo that was killed")
        try:
            self._story()
        finally:
            if self.lab is not None:
                report = self.lab.close()
                stopped = len(report.stopped)
                self.say(
                    f"lab removed: {len(report.namespaces)} namespaces deleted, "
                    f"{stopped} process{'' if stopped == 1 else 'es'} stopped"
                )
        return self.result

    def _story(self) -> None:
        self.say("two nodes share 198.51.100.100 with CARP (vhid 1, advbase 1 s, preempt on)")
        self.say("node1 advskew 0, node2 advskew 100: the lower skew advertises faster and wins")
        began = time.monotonic()
        self.lab = lab = Cluster.up(
            LabOptions(name=self.name, nodes=2, preempt=True, root=self.root)
        )
        self.say(f"lab {self.name} up: switch (a bridge), node1 .1, node2 .2, client .200")
        self.say("carpctl run started on node1 and node2; both listen for 3 s (3 x advbase)")

        first = self._wait_role("node1", "MASTER")
        self.result.election_ms = (first.time - self._wall(began)) * 1000
        self.say(f"node1 is MASTER: {first.reason} (no advertisement heard)")
        if lab.role("node2") == "BACKUP":
            self.say("node2 stays BACKUP: it hears node1's advertisements every second")

        vip = lab.state.vips[0].split("/")[0]
        with Prober(lab, vip, interval=0.01) as prober:
            reply = prober.wait_reply(time.monotonic(), 5.0)
            if reply is None:
                raise LabError(f"the client cannot reach {vip}")
            self.say(
                f"client pings {vip} every 10 ms: reply from {reply.mac} "
                f"= {self._owner(reply)}, {reply.rtt * 1000:.2f} ms"
            )
            time.sleep(1.0)
            self._crash(prober)
            time.sleep(1.0)
            self._comeback(prober)
            time.sleep(1.0)
            self._graceful(prober)
        self._summary()

    def _crash(self, prober: Prober) -> None:
        assert self.lab is not None
        lab = self.lab
        crash = lab.fail("node1", FailMode.KILL)
        self.say("node1 crashes: carpctl killed (SIGKILL), its link down")
        takeover = self._wait_role("node2", "MASTER", TAKEOVER_TIMEOUT)
        self.result.takeover_log_ms = (takeover.time - self._wall(crash)) * 1000
        self.say(f"node2 is MASTER after {self.result.takeover_log_ms:.0f} ms: {takeover.reason}")
        reply = prober.wait_reply(crash, TAKEOVER_TIMEOUT)
        if reply is None:
            raise LabError("the client never reached the virtual address again")
        self.result.takeover_ms = (reply.received - crash) * 1000
        last_before = [r.seq for r in prober.replies if r.sent < crash]
        self.result.lost_replies = reply.seq - (max(last_before) if last_before else 0) - 1
        self.say(
            f"client reaches {reply.source} again {_ms(reply.received - crash)} after the "
            f"crash, via {reply.mac} = {self._owner(reply)}"
        )
        self.say(f"  {self.result.lost_replies} pings unanswered in between")

    def _comeback(self, prober: Prober) -> None:
        assert self.lab is not None
        lab = self.lab
        back = time.monotonic()
        lab.recover("node1")
        self.say("node1 comes back: rebooted (stale address gone), link up, carpctl started")
        master = self._wait_role("node1", "MASTER")
        self.say(
            f"node1 is MASTER again after {(master.time - self._wall(back)) * 1000:.0f} ms: "
            f"{master.reason}"
        )
        backup = self._wait_role("node2", "BACKUP")
        self.say(f"node2 steps back to BACKUP: {backup.reason}")
        mac = lab.host("node1").mac
        reply = prober.wait_reply(back, 5.0, mac=mac)
        if reply is not None:
            time.sleep(0.3)
            gap = self._longest_gap(prober.replies_between(back - 0.1, time.monotonic()))
            self.result.handback_gap_ms = gap * 1000
            self.say(f"client's replies come from node1 again; longest gap {_ms(gap)} (preempt)")
        else:
            self.result.notes.append("the client did not see node1's MAC again")
            self.say("client does not see node1's MAC again yet")

    def _graceful(self, prober: Prober) -> None:
        assert self.lab is not None
        lab = self.lab
        stop = lab.fail("node1", FailMode.TERM)
        self.say("node1 stops gracefully (SIGTERM): it bows out before leaving")
        reply = prober.wait_reply(stop, TAKEOVER_TIMEOUT, mac=lab.host("node2").mac)
        if reply is None:
            raise LabError("the client did not reach the VIP through node2 after the stop")
        self.result.graceful_ms = (reply.received - stop) * 1000
        master = logs.last_role(lab.log("node2"))
        reason = f" ({master.reason})" if master and master.new == "MASTER" else ""
        self.say(
            f"node2 answers after {_ms(reply.received - stop)}{reason}: "
            "a bow-out is much faster than a crash"
        )

    def _summary(self) -> None:
        r = self.result
        if r.takeover_ms is not None:
            self.say(f"summary: after a crash the client waited {r.takeover_ms:.0f} ms")
            self.say("  (CARP: node2 waits 3 x advbase + 100/256 s = 3.39 s after the")
            self.say("  last advertisement, sent up to 1 s before the crash: 2.4-3.4 s)")
        if r.graceful_ms is not None:
            self.say(f"  after a graceful stop: {r.graceful_ms:.0f} ms")


def run_demo(say: Say = print, name: str | None = None, root: Path = DEFAULT_ROOT) -> DemoResult:
    """Tell the story (one short line per event); always removes the lab."""
    return Demo(say, name, root).run()

"""Failover: from a fault on node1 to the client's first reply from the new owner.

One lab per daemon (node1 preferred, node2 backup, preempt on); the client
pings the VIP every 10 ms. Each run fails node1 three ways, each followed
by its return:

* kill: SIGKILL, then node1's link goes down (the instant is the link
  going down); node1 returns rebooted (its daemon started afresh);
* stop: SIGSTOP (the kernel still answers ARP and ping); node1 returns
  with SIGCONT ("resume");
* term: SIGTERM, a graceful stop; node1 returns with a fresh start.

After a fresh start, "preempt" is the time from the start (``lab.recover``
returning: the daemon's process was just forked) to the client's first
reply from node1. tcpdump on both switch ports records node1's last
advertisement before the fault, so each crash is also compared with the
protocol's own bound: the backup may take over ``MASTER_DOWN`` after the
last advertisement it heard.
"""

from __future__ import annotations

import contextlib
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.capture import Capture, Frame, adverts, garps
from bench.daemons import MASTER_DOWN, Daemon, vhid_plan
from bench.stats import Summary, summarize
from carpctl.lab import Cluster, FailMode, LabError, Prober
from carpctl.lab.netns import wait_for

Say = Callable[[str], None]
TIMEOUT = 15.0  # seconds to wait for a takeover or a return
CASES = ("kill", "stop", "term")
CRASHES = ("kill", "stop")  # compared with the protocol's bound


def between(start: float | None, end: float | None) -> float | None:
    """Milliseconds from ``start`` to ``end``; None if either is unknown."""
    return None if start is None or end is None else (end - start) * 1000


@dataclass
class Sample:
    daemon: str
    case: str  # kill | stop | term | preempt | resume
    run: int
    at: float  # time.monotonic() of the fault, or of the start / SIGCONT
    reply: float | None = None  # the client's first reply from the expected node
    last_advert: float | None = None  # node1's last advertisement before the fault
    new_advert: float | None = None  # the new owner's first advertisement after ``at``
    garp: float | None = None  # the new owner's first gratuitous ARP after ``at``
    recover_ms: float | None = None  # how long lab.recover took (its last step starts node1)

    def ms(self, end: float | None) -> float | None:
        """Milliseconds from the fault (or the return) to ``end``."""
        return between(self.at, end)

    @property
    def bound(self) -> float | None:
        """The protocol's bound: the backup's wait after the last advertisement."""
        return None if self.last_advert is None else self.last_advert + MASTER_DOWN

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self) | {
            "client_ms": self.ms(self.reply),
            "advert_ms": self.ms(self.new_advert),
            "garp_ms": self.ms(self.garp),
        }
        if self.case in CRASHES:
            d |= {
                "since_advert_ms": between(self.last_advert, self.at),
                "client_excess_ms": between(self.bound, self.reply),
                "advert_excess_ms": between(self.bound, self.new_advert),
            }
        return d


def _lab_name(daemon: Daemon) -> str:
    return f"bf{daemon.name[:2]}{os.getpid() % 100000}"


class FailoverBench:
    def __init__(
        self, daemon: Daemon, runs: int, rng: random.Random, say: Say, keep: Path | None = None
    ) -> None:
        self.daemon, self.runs, self.rng, self.say = daemon, runs, rng, say
        self.keep = keep  # a directory for the captures (and one of the client's port)
        self.samples: list[Sample] = []
        self.problems: list[str] = []

    def run(self) -> list[Sample]:
        with (
            tempfile.TemporaryDirectory(prefix="carpctl-bench-") as scratch,
            Cluster.up(name=_lab_name(self.daemon), nodes=2, start=False, preempt=True) as lab,
        ):
            directory = Path(scratch)
            if self.keep is not None:
                directory = self.keep / self.daemon.name
                directory.mkdir(parents=True, exist_ok=True)
            captures = [Capture(lab, node, directory) for node in lab.nodes]
            if self.keep is not None:
                captures.append(Capture(lab, "client", directory, everything=True))
            try:
                for capture in captures:
                    capture.start()
                self._series(lab)
            finally:
                for capture in captures:
                    with contextlib.suppress(LabError, OSError):
                        capture.stop()
            self._analyse(lab, captures[0].frames, captures[1].frames)
        return self.samples

    def _series(self, lab: Cluster) -> None:
        plan = vhid_plan(1)
        for node in lab.nodes:  # node1 first
            self.daemon.start(lab, node, plan, preempt=True)
        vip = plan[0].ip
        with Prober(lab, vip) as prober:
            for run in range(self.runs):
                for case in CASES:
                    self._settle(lab, prober)
                    self._cycle(lab, prober, run, case)

    def _settle(self, lab: Cluster, prober: Prober) -> None:
        """node1 alone holds the VIP and answers the client; then a random phase."""
        mac = lab.host("node1").mac
        if not wait_for(lambda: lab.holders() == ["node1"], 20, 0.05):
            raise LabError(f"{self.daemon.name}: node1 never held the VIP alone: {lab.holders()}")
        if prober.wait_reply(time.monotonic(), 3.0, mac=mac) is None:
            # The client still sends to node2's MAC (no announcement reached it).
            self.problems.append("client's neighbour entry flushed to reach node1 again")
            lab.exec("client", ["ip", "neigh", "flush", "dev", "lab0"])
            if prober.wait_reply(time.monotonic(), 5.0, mac=mac) is None:
                raise LabError(f"{self.daemon.name}: the client cannot reach node1")
        # Past any announcement burst; the fault falls anywhere in the 1 s advert cycle.
        time.sleep(1.5 + self.rng.uniform(0.0, 1.0))

    def _cycle(self, lab: Cluster, prober: Prober, run: int, case: str) -> None:
        node1, node2 = lab.host("node1").mac, lab.host("node2").mac
        fault = Sample(self.daemon.name, case, run, self.daemon.fail(lab, "node1", FailMode(case)))
        reply = prober.wait_reply(fault.at, TIMEOUT, mac=node2)
        fault.reply = reply.received if reply else None
        self.samples.append(fault)
        self.say(f"  {self.daemon.name} run {run + 1} {case}: {_fmt(fault.ms(fault.reply))}")
        # node1 returns at a random phase of node2's advertisements (period 1.39 s).
        time.sleep(1.0 + self.rng.uniform(0.0, 1.4))
        back = Sample(self.daemon.name, "resume" if case == "stop" else "preempt", run, 0.0)
        back.at = time.monotonic()  # the lab's recover: link, addresses, then SIGCONT / start
        self.daemon.recover(lab, "node1")
        back.recover_ms = between(back.at, time.monotonic())
        reply = prober.wait_reply(back.at, TIMEOUT, mac=node1)
        back.reply = reply.received if reply else None
        self.samples.append(back)
        self.say(f"  {self.daemon.name} run {run + 1} {back.case}: {_fmt(back.ms(back.reply))}")

    def _analyse(self, lab: Cluster, node1: list[Frame], node2: list[Frame]) -> None:
        ip1, ip2 = (lab.host(n).addresses[0].split("/")[0] for n in ("node1", "node2"))
        vip = lab.state.vips[0].split("/")[0]
        sent1, sent2 = adverts(node1, ip1, 1), adverts(node2, ip2, 1)
        announced1, announced2 = garps(node1, vip), garps(node2, vip)
        for sample in self.samples:
            if sample.case in CASES:
                before = [t for t in sent1 if t < sample.at]
                sample.last_advert = before[-1] if before else None
                sample.new_advert = _first_after(sent2, sample.at)
                sample.garp = _first_after(announced2, sample.at)
            else:
                sample.new_advert = _first_after(sent1, sample.at)
                sample.garp = _first_after(announced1, sample.at)


def _first_after(times: list[float], instant: float) -> float | None:
    return next((t for t in times if t >= instant), None)


def _fmt(ms: float | None) -> str:
    return "no reply" if ms is None else f"{ms:.0f} ms"


def summaries(samples: list[Sample]) -> dict[str, dict[str, Summary | None]]:
    """Per case: the client's time, and for crashes the excess over the bound."""
    result: dict[str, dict[str, Summary | None]] = {}
    for case in (*CASES, "preempt", "resume"):
        mine = [s for s in samples if s.case == case]
        if not mine:
            continue

        def values(get: Callable[[Sample], float | None], mine: list[Sample] = mine) -> list[float]:
            return [v for s in mine if (v := get(s)) is not None]

        result[case] = {
            "client_ms": summarize(values(lambda s: s.ms(s.reply))),
            "recover_ms": summarize(values(lambda s: s.recover_ms)),
            "advert_ms": summarize(values(lambda s: s.ms(s.new_advert))),
            "garp_ms": summarize(values(lambda s: s.ms(s.garp))),
        }
        if case in CRASHES:
            result[case] |= {
                "fault_after_last_advert_ms": summarize(
                    values(lambda s: between(s.last_advert, s.at))
                ),
                "client_excess_ms": summarize(values(lambda s: between(s.bound, s.reply))),
                "advert_excess_ms": summarize(values(lambda s: between(s.bound, s.new_advert))),
            }
    return result


def run_failover(
    daemon: Daemon, runs: int, rng: random.Random, say: Say, keep: Path | None = None
) -> dict[str, Any]:
    bench = FailoverBench(daemon, runs, rng, say, keep)
    samples = bench.run()
    return {
        "samples": [s.as_dict() for s in samples],
        "summary": {
            case: {k: (v.as_dict() if v else None) for k, v in by_metric.items()}
            for case, by_metric in summaries(samples).items()
        },
        "problems": bench.problems,
    }

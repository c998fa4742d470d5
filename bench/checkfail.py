"""Check failure to takeover: node1's http check starts failing; how soon does node2 serve?

The failover lab (``failover.FailoverBench``: node1 advskew 0, node2 advskew
100, advbase 1, preempt, both switch ports captured, the client's prober)
with one ``[[check]]`` on node1 only, against a real HTTP endpoint in
node1's namespace (``health_server.py``): interval 1 s, timeout 0.5 s,
fall 2, rise 2, demote 150. Each run, from a settled state (node1 master,
its check passing, the client reaching node1's MAC) and after a random
1.5-2.5 s (any phase of the 1 s check schedule), the endpoint's flag file
is removed: it answers 500 from then on. Measured, from that instant:

* ``client``: the client's first reply from node2's MAC;
* ``verdict``: node1 logs "check changed" (new: failing) as it records the
  fall-th failing probe; its JSON time stamp (wall clock) is moved onto
  ``time.monotonic()`` with the offset read at the fault;
* node1's first advertisement with the demoted skew (0 + 150), and
  node2's first advertisement, on the wire.

Bound: fall x interval + advbase = 3 s (the fall-th failing probe comes at
most fall intervals after the fault; node1 re-advertises at once when
demoted and node2 preempts on it). The excess over the verdict (client
minus verdict) is what carpctl and the network add after the check.

1-2.4 s after the takeover the flag is restored ("checkback"): node1's
check passes after rise probes, its demotion is lifted, and node1 (a
backup with preempt) takes over on node2's next advertisement; bound rise
x interval + node2's period (1 + 100/256 s).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.capture import Frame, adverts, clock_offset, garps
from bench.checks import CheckedCarpctl, HttpCheck, check_events, start_server
from bench.daemons import ADVBASE, SKEW, vhid_plan
from bench.failover import TIMEOUT, FailoverBench, Sample, _first_after, _fmt, between
from bench.stats import Summary, summarize
from carpctl.lab import Cluster, LabError, Prober
from carpctl.lab.netns import wait_for

Say = Callable[[str], None]
CHECK = HttpCheck("web", "/health", interval=1.0, timeout=0.5, rise=2, fall=2, demote=150)
FAIL_BOUND = CHECK.fall * CHECK.interval + ADVBASE  # 3 s
BACK_BOUND = CHECK.rise * CHECK.interval + ADVBASE + SKEW["node2"] / 256  # 3.390625 s
CASES = ("checkfail", "checkback")


@dataclass
class CheckSample(Sample):
    offset: float = 0.0  # time.time() - time.monotonic(), read at ``at``
    verdict: float | None = None  # node1 logged the check's new state
    demoted: float | None = None  # node1's first advertisement with the demoted skew

    @property
    def bound(self) -> float:
        return self.at + (FAIL_BOUND if self.case == "checkfail" else BACK_BOUND)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {
            "client_ms": self.ms(self.reply),
            "verdict_ms": self.ms(self.verdict),
            "excess_ms": between(self.verdict, self.reply),
            "demoted_after_verdict_ms": between(self.verdict, self.demoted),
            "advert_after_verdict_ms": between(self.verdict, self.new_advert),
            "garp_after_verdict_ms": between(self.verdict, self.garp),
            "client_minus_bound_ms": between(self.bound, self.reply),
        }


class CheckFailBench(FailoverBench):
    def __init__(self, runs: int, rng: random.Random, say: Say, keep: Path | None = None) -> None:
        super().__init__(CheckedCarpctl({"node1": [CHECK]}), runs, rng, say, keep)
        self.flag = Path()

    def _series(self, lab: Cluster) -> None:
        self.flag = lab.store.host_dir("node1") / "healthy"
        self.flag.touch()
        start_server(lab, "node1", self.flag)
        plan = vhid_plan(1)
        for node in lab.nodes:  # node1 first
            self.daemon.start(lab, node, plan, preempt=True)
        with Prober(lab, plan[0].ip) as prober:
            for run in range(self.runs):
                if not wait_for(lambda: self._check_state(lab) == "passing", 20, 0.1):
                    raise LabError("node1's check never passed")
                self._settle(lab, prober)  # node1 alone, reached by the client; random phase
                self._cycle(lab, prober, run, "checkfail")

    def _check_state(self, lab: Cluster) -> str:
        changes = [e for e in check_events(lab, "node1", 0.0) if e.check == CHECK.name]
        return changes[-1].new if changes else ""

    def _cycle(self, lab: Cluster, prober: Prober, run: int, case: str) -> None:
        node1, node2 = lab.host("node1").mac, lab.host("node2").mac
        fault = CheckSample(self.daemon.name, case, run, time.monotonic(), offset=clock_offset())
        self.flag.unlink()  # the endpoint answers 500 from now on
        reply = prober.wait_reply(fault.at, TIMEOUT, mac=node2)
        fault.reply = reply.received if reply else None
        self.samples.append(fault)
        self.say(f"  run {run + 1} {case}: {_fmt(fault.ms(fault.reply))}")
        # The check recovers at a random phase of node2's advertisements (1.39 s).
        time.sleep(1.0 + self.rng.uniform(0.0, 1.4))
        back = CheckSample(self.daemon.name, "checkback", run, time.monotonic())
        back.offset = clock_offset()
        self.flag.touch()
        reply = prober.wait_reply(back.at, TIMEOUT, mac=node1)
        back.reply = reply.received if reply else None
        self.samples.append(back)
        self.say(f"  run {run + 1} checkback: {_fmt(back.ms(back.reply))}")

    def _analyse(self, lab: Cluster, node1: list[Frame], node2: list[Frame]) -> None:
        ip1, ip2 = (lab.host(n).addresses[0].split("/")[0] for n in ("node1", "node2"))
        vip = lab.state.vips[0].split("/")[0]
        sent1, sent2 = adverts(node1, ip1, 1), adverts(node2, ip2, 1)
        demoted = [
            f.time
            for f in node1
            if f.kind == "advert" and f.src == ip1 and f.byte2 == SKEW["node1"] + CHECK.demote
        ]
        for sample in self.samples:
            if not isinstance(sample, CheckSample):
                continue
            failing = sample.case == "checkfail"
            want = "failing" if failing else "passing"
            verdicts = [
                e.time
                for e in check_events(lab, "node1", sample.offset)
                if e.check == CHECK.name and e.new == want
            ]
            sample.verdict = _first_after(verdicts, sample.at)
            if failing:
                before = [t for t in sent1 if t < sample.at]
                sample.last_advert = before[-1] if before else None
                sample.demoted = _first_after(demoted, sample.at)
                sample.new_advert = _first_after(sent2, sample.at)
                sample.garp = _first_after(garps(node2, vip), sample.at)
            else:
                sample.new_advert = _first_after(sent1, sample.at)
                sample.garp = _first_after(garps(node1, vip), sample.at)


METRICS: dict[str, Callable[[CheckSample], float | None]] = {
    "client_ms": lambda s: s.ms(s.reply),
    "verdict_ms": lambda s: s.ms(s.verdict),
    "excess_ms": lambda s: between(s.verdict, s.reply),
    "demoted_after_verdict_ms": lambda s: between(s.verdict, s.demoted),
    "advert_after_verdict_ms": lambda s: between(s.verdict, s.new_advert),
    "garp_after_verdict_ms": lambda s: between(s.verdict, s.garp),
    "client_minus_bound_ms": lambda s: between(s.bound, s.reply),
}


def check_summaries(samples: list[Sample]) -> dict[str, dict[str, Summary | None]]:
    result: dict[str, dict[str, Summary | None]] = {}
    for case in CASES:
        mine = [s for s in samples if isinstance(s, CheckSample) and s.case == case]
        if mine:
            result[case] = {
                name: summarize([v for s in mine if (v := get(s)) is not None])
                for name, get in METRICS.items()
            }
    return result


def run_checkfail(
    runs: int, rng: random.Random, say: Say, keep: Path | None = None
) -> dict[str, Any]:
    bench = CheckFailBench(runs, rng, say, keep)
    samples = bench.run()
    return {
        "check": asdict(CHECK),
        "bounds_ms": {"checkfail": FAIL_BOUND * 1000, "checkback": BACK_BOUND * 1000},
        "samples": [s.as_dict() for s in samples],
        "summary": {
            case: {k: (v.as_dict() if v else None) for k, v in by_metric.items()}
            for case, by_metric in check_summaries(samples).items()
        },
        "problems": bench.problems,
    }


def _cell(summary: dict[str, Any] | None, digits: int = 0) -> str:
    return Summary(**summary).text(digits) if summary else "-"


def checkfail_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| case | n | client ms: median [min..max] | IQR | bound ms | client - bound "
        "| fault → verdict | verdict → client (excess) | verdict → node1's demoted advert "
        "| verdict → new master's 1st advert | verdict → its GARP | within bound |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case, s in result["summary"].items():
        client, bound = s["client_ms"], result["bounds_ms"][case]
        met = "no data" if not client else ("met" if client["max"] <= bound else "not met")
        iqr = f"{client['p25']:.0f}..{client['p75']:.0f}" if client else "-"
        lines.append(
            f"| {case} | {client['n'] if client else 0} | {_cell(client)} | {iqr} | {bound:.0f} "
            f"| {_cell(s['client_minus_bound_ms'])} | {_cell(s['verdict_ms'])} "
            f"| {_cell(s['excess_ms'], 1)} | {_cell(s['demoted_after_verdict_ms'], 1)} "
            f"| {_cell(s['advert_after_verdict_ms'], 1)} | {_cell(s['garp_after_verdict_ms'], 1)} "
            f"| {met} |"
        )
    return lines

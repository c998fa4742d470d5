"""Advertisement jitter of a carpctl master under the load of 200 http checks.

A one-node lab: carpctl on node1 (1 vhid, advbase 1, advskew 0) is master
alone, with ``count`` ``[[check]]`` tables of kind http (interval 1 s,
timeout 0.5 s, rise 2, fall 2) against ``health_server.py`` in node1's
namespace: check ``i`` asks ``/ok/i``, or ``/hang/i`` for every tenth
(``i % 10 == 0``): those requests are never answered, so 20 probes a
second run into their timeout and are abandoned by the runner. ``demote``
is 0: the failing checks leave the advertised skew at 0, so the period
stays 1 s (a demotion adds to the skew, and the period is 1 + skew/256).

Once node1 holds the VIP and has logged "ready: every check has a
verdict", plus ``SETTLE``, tcpdump on node1's switch port records its
advertisements for ``window`` seconds (``capture.Capture``); the jitter is
each interval minus 1 s (``stats.jitter``). The daemon's CPU (user +
system, all its threads) is read with psutil before and after the window,
like ``steady.py``; the endpoint's CPU is shown beside it. The same is run
with no checks first, as the baseline on the same machine.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.capture import Capture, adverts, clock_offset
from bench.checks import CheckedCarpctl, HttpCheck, check_events, log_events, start_server
from bench.daemons import PERIOD, vhid_plan
from bench.stats import Jitter, jitter
from bench.steady import _cpu_seconds
from carpctl.lab import Cluster, LabError
from carpctl.lab.netns import wait_for

Say = Callable[[str], None]
HANG_EVERY = 10  # every tenth URL hangs
SETTLE = 5.0  # seconds after the checks' verdicts, before the window
TARGET_P99_MS = 20.0
READY = "ready: every check has a verdict"
ABANDONED = "check abandoned past its timeout"


def check_plan(count: int) -> list[HttpCheck]:
    return [
        HttpCheck(
            f"c{i:03d}",
            f"/hang/{i}" if i % HANG_EVERY == 0 else f"/ok/{i}",
            interval=1.0,
            timeout=0.5,
            demote=0,
        )
        for i in range(count)
    ]


@dataclass
class JitterRun:
    checks: int
    hanging: int
    window_s: float
    jitter: Jitter | None
    cpu_percent: float  # the daemon, of one core
    server_cpu_percent: float | None  # the HTTP endpoint, of one core
    threads: int  # the daemon's threads at the end of the window
    abandoned: int  # probes abandoned past their timeout during the window (log lines)
    transitions: int  # "check changed" during the window (should be none)
    stable: bool  # node1 held the VIP throughout (at both ends of the window)
    load_before: float
    load_after: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["jitter"] = self.jitter.as_dict() if self.jitter else None
        return d


def _process(lab: Cluster, key: str) -> list[psutil.Process]:
    ref = lab.process(key)
    try:
        return [psutil.Process(ref.pid)] if ref is not None and ref.alive() else []
    except psutil.Error:
        return []


def run_one(count: int, window: float, say: Say) -> JitterRun:
    checks = check_plan(count)
    daemon = CheckedCarpctl({"node1": checks})
    name = f"bj{count}_{os.getpid() % 10000}"
    with (
        tempfile.TemporaryDirectory(prefix="carpctl-bench-") as scratch,
        Cluster.up(name=name, nodes=1, start=False, preempt=True) as lab,
    ):
        if checks:
            start_server(lab, "node1")
        began = time.monotonic()
        daemon.start(lab, "node1", vhid_plan(1), preempt=True)
        if not wait_for(lambda: lab.holders() == ["node1"], 30, 0.1):
            raise LabError(f"{count} checks: node1 never took the VIP")
        if checks and not wait_for(lambda: bool(log_events(lab, "node1", READY, 0.0)), 30, 0.2):
            raise LabError(f"{count} checks: the checks never all had a verdict")
        say(f"  {count} checks: master and ready after {time.monotonic() - began:.1f} s")
        time.sleep(SETTLE)
        processes, server = daemon.processes(lab, "node1"), _process(lab, "http-node1")
        recorder = Capture(lab, "node1", Path(scratch)).start()
        load_before = os.getloadavg()[0]
        try:
            start = time.monotonic()
            cpu0 = _cpu_seconds(processes), _cpu_seconds(server)
            stable = lab.holders() == ["node1"]
            time.sleep(window)
            cpu1 = _cpu_seconds(processes), _cpu_seconds(server)
            wall = time.monotonic() - start
            stable = stable and lab.holders() == ["node1"]
        finally:
            frames = recorder.stop()
        threads = sum(p.num_threads() for p in processes if p.is_running())
        offset = clock_offset()
        end = start + wall
        abandoned = [e for e in log_events(lab, "node1", ABANDONED, offset) if start <= e["mono"]]
        changes = [e for e in check_events(lab, "node1", offset) if start <= e.time <= end]
        src = lab.host("node1").addresses[0].split("/")[0]
        series = [t for t in adverts(frames, src, 1) if start <= t <= end]
    run = JitterRun(
        checks=count,
        hanging=sum(1 for c in checks if c.path.startswith("/hang/")),
        window_s=wall,
        jitter=jitter([series], PERIOD),
        cpu_percent=(cpu1[0] - cpu0[0]) / wall * 100,
        server_cpu_percent=(cpu1[1] - cpu0[1]) / wall * 100 if server else None,
        threads=threads,
        abandoned=sum(1 for e in abandoned if e["mono"] <= end),
        transitions=len(changes),
        stable=stable,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    j = run.jitter
    say(
        f"  {count} checks: CPU {run.cpu_percent:.1f}% of a core, "
        + (f"p99 {j.p99_abs_ms:.2f} ms, max {j.max_abs_ms:.2f} ms" if j else "no adverts")
    )
    return run


def run_checkjitter(window: float, say: Say, counts: tuple[int, ...] = (0, 200)) -> dict[str, Any]:
    return {"runs": [run_one(count, window, say).as_dict() for count in counts]}


def checkjitter_table(result: dict[str, Any]) -> list[str]:
    lines = [
        "| checks (hanging) | window s | intervals | mean (drift) ms | median abs ms "
        "| p99 abs ms | max abs ms | daemon CPU % | threads | abandoned probes/s "
        "| endpoint CPU % | p99 < 20 ms |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        j = r["jitter"]
        if not j:
            lines.append(f"| {r['checks']} ({r['hanging']}) | no advertisements captured |")
            continue
        server = r["server_cpu_percent"]
        met = "met" if j["p99_abs_ms"] < TARGET_P99_MS else "not met"
        lines.append(
            f"| {r['checks']} ({r['hanging']}) | {r['window_s']:.0f} | {j['intervals']} "
            f"| {j['mean_ms']:+.2f} | {j['median_abs_ms']:.2f} | {j['p99_abs_ms']:.2f} "
            f"| {j['max_abs_ms']:.2f} | {r['cpu_percent']:.1f} | {r['threads']} "
            f"| {r['abandoned'] / r['window_s']:.1f} "
            f"| {'-' if server is None else f'{server:.1f}'} | {met} |"
        )
    return lines

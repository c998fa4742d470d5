"""Steady state: idle CPU and memory of the daemons, and advertisement jitter.

A two-node lab runs ``count`` vhids (node1 master of all, node2 backup).
Once node1 holds every address and node2 none, and a settling time has
passed (announcement bursts over), the daemons' CPU time is read with
psutil before and after a window; memory (RSS, USS) at its end. During the
same window tcpdump on node1's switch port records its advertisements: the
intervals between consecutive advertisements of each vhid, minus the
nominal period, are the jitter. tcpdump's own CPU is not counted.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.capture import Capture, adverts
from bench.daemons import PERIOD, Daemon, Vhid, vhid_plan
from bench.stats import Jitter, jitter
from carpctl.lab import Cluster, LabError
from carpctl.lab.netns import wait_for
from carpctl.lab.topology import INTERFACE

Say = Callable[[str], None]
ELECTED_TIMEOUT = 90.0
SETTLE = 7.0  # keepalived repeats its GARPs 5 s after taking over; carpctl after 2 adverts


@dataclass
class Usage:
    """CPU and memory of one node's daemon processes over the window."""

    processes: int
    cpu_percent: float  # of one core: CPU seconds / wall seconds * 100
    rss_mib: float  # summed over the processes (shared pages counted in each)
    uss_mib: float | None  # summed; None if psutil could not read it


@dataclass
class SteadyResult:
    daemon: str
    vhids: int
    window_s: float
    master: Usage
    backup: Usage
    jitter: Jitter | None
    stable: bool  # node1 still held every address at the end
    load_before: float
    load_after: float

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["jitter"] = self.jitter.as_dict() if self.jitter else None
        return d


def _cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system  # not children_*: none during the window
    return total


def _memory(processes: list[psutil.Process]) -> tuple[float, float | None]:
    rss, uss = 0, 0
    have_uss = True
    for process in processes:
        try:
            full = process.memory_full_info()
            rss, uss = rss + full.rss, uss + full.uss
        except psutil.AccessDenied:
            have_uss = False
            with contextlib.suppress(psutil.Error):
                rss += process.memory_info().rss
        except psutil.Error:
            continue
    mib = 1024 * 1024
    return rss / mib, (uss / mib if have_uss else None)


def _holds_all(lab: Cluster, node: str, plan: list[Vhid]) -> bool:
    held = {a.split("/")[0] for a in lab.net.addresses(lab.host(node).namespace, INTERFACE)}
    return all(v.ip in held for v in plan)


def _holds_none(lab: Cluster, node: str, plan: list[Vhid]) -> bool:
    held = {a.split("/")[0] for a in lab.net.addresses(lab.host(node).namespace, INTERFACE)}
    return not any(v.ip in held for v in plan)


def run_steady(daemon: Daemon, count: int, window: float, capture: bool, say: Say) -> SteadyResult:
    plan = vhid_plan(count)
    name = f"bs{daemon.name[:2]}{count}_{os.getpid() % 10000}"
    with (
        tempfile.TemporaryDirectory(prefix="carpctl-bench-") as scratch,
        Cluster.up(name=name, nodes=2, start=False, preempt=True) as lab,
    ):
        began = time.monotonic()
        for node in lab.nodes:  # preempt: whoever wins a startup race, node1 ends up master
            daemon.start(lab, node, plan, preempt=True)
        elected = wait_for(
            lambda: _holds_all(lab, "node1", plan) and _holds_none(lab, "node2", plan),
            ELECTED_TIMEOUT,
            0.2,
        )
        if not elected:
            raise LabError(f"{daemon.name} with {count} vhids: node1 did not become master of all")
        say(f"  {daemon.name} {count} vhids: elected after {time.monotonic() - began:.1f} s")
        time.sleep(SETTLE)
        master, backup = daemon.processes(lab, "node1"), daemon.processes(lab, "node2")
        recorder = Capture(lab, "node1", Path(scratch)) if capture else None
        if recorder is not None:
            recorder.start()
        load_before = os.getloadavg()[0]
        try:
            start = time.monotonic()
            cpu0 = (_cpu_seconds(master), _cpu_seconds(backup))
            time.sleep(window)
            cpu1 = (_cpu_seconds(master), _cpu_seconds(backup))
            wall = time.monotonic() - start
        finally:
            frames = recorder.stop() if recorder is not None else []
        usages = []
        for processes, before, after in ((master, cpu0[0], cpu1[0]), (backup, cpu0[1], cpu1[1])):
            rss, uss = _memory(processes)
            usages.append(Usage(len(processes), (after - before) / wall * 100, rss, uss))
        stable = _holds_all(lab, "node1", plan) and _holds_none(lab, "node2", plan)
        src = lab.host("node1").addresses[0].split("/")[0]
        series = [
            [t for t in adverts(frames, src, v.number) if start <= t <= start + wall] for v in plan
        ]
    result = SteadyResult(
        daemon=daemon.name,
        vhids=count,
        window_s=wall,
        master=usages[0],
        backup=usages[1],
        jitter=jitter(series, PERIOD) if capture else None,
        stable=stable,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
    say(
        f"  {daemon.name} {count} vhids: master {usages[0].cpu_percent:.2f}% "
        f"backup {usages[1].cpu_percent:.2f}% of a core, "
        f"RSS {usages[0].rss_mib:.1f}/{usages[1].rss_mib:.1f} MiB"
    )
    return result

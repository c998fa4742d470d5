"""Services follow mastership: from node2's takeover to its services started and answering.

The failover lab (``failover.FailoverBench``: carpctl, advbase 1, advskew
0 / 100, preempt, both switch ports captured, the client's ICMP prober) with
two ``[[service]]`` tables on each node, in this order: ``hook``, a shell
script whose start appends its own time (``date +%s.%N``) and the daemon's
``CARPCTL_TIME`` to a file; ``web``, a ``run`` service, ``python -m
http.server 8081`` serving a ``who`` file that holds the node's MAC. The
client runs ``http_probe.py`` (a new ``GET /who`` to the VIP every 10 ms).

Each run fails node1 twice (kill: SIGKILL + link down; term: SIGTERM), each
from a settled state (node1 master and serving, node2's web stopped) after a
random 1.5-2.5 s. On node2, from its first advertisement on the wire (t0):
its "state changed" log line, the reactor's "service start" of each
service, the hook's time stamp, the client's first ICMP reply and first HTTP
200 from node2 (wall-clock times moved onto ``time.monotonic()`` with the
offset read at the fault). 1-2.4 s later node1 comes back (after a kill
"rebooted": its web server, which outlived carpctl's SIGKILL, is killed by
PID first) and preempts: "preempt" is the client's first 200 from node1.
"""

from __future__ import annotations

import json
import random
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.capture import Frame, clock_offset
from bench.checks import log_events
from bench.daemons import Carpctl, Vhid, vhid_plan
from bench.failover import TIMEOUT, FailoverBench, Sample, _first_after, _fmt, between
from bench.stats import Summary, summarize
from carpctl.daemon import config as carpctl_config
from carpctl.lab import Cluster, FailMode, LabError, Prober
from carpctl.lab.netns import wait_for

Say = Callable[[str], None]
PORT = 8081
CASES = ("kill", "term")
HTTP_PROBE = Path(__file__).with_name("http_probe.py")
HOOK = """#!/bin/sh
# Written by bench/: the services benchmark's hook; $1 is start or stop, then
# devd's arguments (1@lab0 MASTER). A start appends its time and CARPCTL_TIME.
now=$(date +%s.%N)
[ "$1" = start ] && echo "$now $CARPCTL_TIME" >> {log}
exit 0
"""


def _www(lab: Cluster, node: str) -> Path:
    return Path(lab.host(node).config).parent / "www"


def _hook_log(lab: Cluster, node: str) -> Path:
    return Path(lab.host(node).config).parent / "hook-starts"


class ServiceCarpctl(Carpctl):
    """bench's carpctl (``daemons.Carpctl``) plus the ``hook`` and ``web`` services."""

    def argvs(self, lab: Cluster, node: str, vhids: list[Vhid], preempt: bool) -> list[list[str]]:
        [argv] = super().argvs(lab, node, vhids, preempt)
        path = Path(argv[-1])  # ... run -c PATH
        hook = path.parent / "hook.sh"
        hook.write_text(HOOK.format(log=shlex.quote(str(_hook_log(lab, node)))))
        hook.chmod(0o755)
        www = _www(lab, node)
        www.mkdir(exist_ok=True)
        (www / "who").write_text(lab.host(node).mac + "\n")
        web = [sys.executable, "-m", "http.server", str(PORT), "--bind", "0.0.0.0",
               "--directory", str(www)]  # fmt: skip
        tables = [
            "[[service]]", 'name = "hook"', f"start = {json.dumps([str(hook), 'start'])}",
            f"stop = {json.dumps([str(hook), 'stop'])}", "timeout = 5", "",
            "[[service]]", 'name = "web"', f"run = {json.dumps(web)}", "timeout = 5", "",
        ]  # fmt: skip
        path.write_text(path.read_text() + "\n" + "\n".join(tables))
        carpctl_config.load(path)  # refused here rather than by the daemon
        return [argv]


class HttpProber(Prober):
    """``carpctl.lab.Prober`` running ``http_probe.py``: a reply's ``mac`` is the
    MAC the answering node's web server names."""

    def start(self) -> HttpProber:
        argv = [sys.executable, str(HTTP_PROBE), self.target, str(PORT),
                "--interval", str(self.interval)]  # fmt: skip
        self._process = self.cluster.net.spawn(
            self.cluster.namespace(self.host), argv, stdout=subprocess.PIPE, detach=True
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self


def listening(lab: Cluster, node: str) -> bool:
    code = f"import socket; socket.create_connection(('127.0.0.1', {PORT}), 1).close()"
    return lab.exec(node, [sys.executable, "-c", code]).returncode == 0


def kill_web_servers(www: list[Path]) -> int:
    """Kill (by PID) the web servers of these directories that outlived their carpctl."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        argv = process.info["cmdline"] or []
        if "http.server" in argv and any(str(w) in argv for w in www):
            found.append(process)
    for process in found:
        process.kill()
    psutil.wait_procs(found, timeout=5)
    return len(found)


@dataclass
class ServiceSample(Sample):
    offset: float = 0.0  # time.time() - time.monotonic(), read at the fault
    reply_sent: float | None = None  # when the client sent the GET that got the first 200
    icmp: float | None = None  # the client's first ICMP reply from node2
    state_log: float | None = None  # node2 logged "state changed" -> MASTER
    role_time: float | None = None  # the role change's time as handed to the hook
    hook_issued: float | None = None  # "service start" (hook)
    hook_ran: float | None = None  # the hook's own time stamp
    hook_done: float | None = None  # "service start ok" (hook)
    web_issued: float | None = None  # "service start" (web)


Getter = Callable[[ServiceSample], float | None]
MILESTONES: list[tuple[str, str, Getter]] = [
    ("advert_ms", "fault → node2's first advertisement (the takeover, t0)",
     lambda s: between(s.at, s.new_advert)),
    ("state_log_ms", 't0 → node2 logs "state changed" (MASTER)',
     lambda s: between(s.new_advert, s.state_log)),
    ("role_time_ms", "t0 → the role change's time handed to the hook (CARPCTL_TIME)",
     lambda s: between(s.new_advert, s.role_time)),
    ("hook_issued_ms", 't0 → "service start" hook (the first start issued)',
     lambda s: between(s.new_advert, s.hook_issued)),
    ("hook_ran_ms", "t0 → the hook's own time stamp",
     lambda s: between(s.new_advert, s.hook_ran)),
    ("hook_done_ms", 't0 → "service start ok" hook',
     lambda s: between(s.new_advert, s.hook_done)),
    ("web_issued_ms", 't0 → "service start" web (http.server spawned)',
     lambda s: between(s.new_advert, s.web_issued)),
    ("icmp_ms", "t0 → client's first ICMP reply from node2",
     lambda s: between(s.new_advert, s.icmp)),
    ("http_ms", "t0 → **client's first HTTP 200 from node2**",
     lambda s: between(s.new_advert, s.reply)),
    ("web_to_http_ms", '"service start" web → that HTTP 200',
     lambda s: between(s.web_issued, s.reply)),
    ("state_log_to_http_ms", '"state changed" log line → that HTTP 200',
     lambda s: between(s.state_log, s.reply)),
    ("client_http_ms", "fault → client's first HTTP 200 from node2",
     lambda s: between(s.at, s.reply)),
]  # fmt: skip


class ServicesBench(FailoverBench):
    def __init__(self, runs: int, rng: random.Random, say: Say, keep: Path | None = None) -> None:
        super().__init__(ServiceCarpctl(), runs, rng, say, keep)
        self.www: list[Path] = []

    def run(self) -> list[Sample]:
        try:
            return super().run()
        finally:  # a web server left by a kill the series did not recover from
            if kill_web_servers(self.www):
                self.problems.append("an orphaned web server was killed after the lab")

    def _series(self, lab: Cluster) -> None:
        plan = vhid_plan(1)
        self.www = [_www(lab, node) for node in lab.nodes]
        for node in lab.nodes:  # node1 first
            self.daemon.start(lab, node, plan, preempt=True)
        with Prober(lab, plan[0].ip) as icmp, HttpProber(lab, plan[0].ip) as http:
            for run in range(self.runs):
                for case in CASES:
                    self._serving(lab, http)
                    self._settle(lab, icmp)  # node1 alone, reached by the client; random phase
                    self._fault(lab, icmp, http, run, case)

    def _serving(self, lab: Cluster, http: Prober) -> None:
        """node1's web answers the client; node2's is stopped."""
        if http.wait_reply(time.monotonic(), 20, mac=lab.host("node1").mac) is None:
            raise LabError("the client never got an answer from node1's web service")
        if not wait_for(lambda: not listening(lab, "node2"), 10, 0.1):
            raise LabError("node2's web service is still running")

    def _fault(self, lab: Cluster, icmp: Prober, http: Prober, run: int, case: str) -> None:
        node1, node2 = lab.host("node1").mac, lab.host("node2").mac
        fault = ServiceSample("carpctl", case, run, 0.0, offset=clock_offset())
        fault.at = self.daemon.fail(lab, "node1", FailMode(case))
        reply = http.wait_reply(fault.at, TIMEOUT, mac=node2)
        if reply is not None:
            fault.reply, fault.reply_sent = reply.received, reply.sent
        ping = icmp.wait_reply(fault.at, 2.0, mac=node2)
        fault.icmp = ping.received if ping else None
        self.samples.append(fault)
        self.say(f"  services run {run + 1} {case}: http {_fmt(fault.ms(fault.reply))}")
        time.sleep(1.0 + self.rng.uniform(0.0, 1.4))  # any phase of node2's adverts
        if case == "kill":  # a rebooted host: its web server, which outlived carpctl, too
            kill_web_servers([_www(lab, "node1")])
            _hook_log(lab, "node1").unlink(missing_ok=True)
        back = ServiceSample("carpctl", "preempt", run, time.monotonic())
        self.daemon.recover(lab, "node1")
        back.recover_ms = between(back.at, time.monotonic())
        reply = http.wait_reply(back.at, TIMEOUT, mac=node1)
        back.reply = reply.received if reply else None
        self.samples.append(back)
        self.say(f"  services run {run + 1} preempt: http {_fmt(back.ms(back.reply))}")

    def _analyse(self, lab: Cluster, node1: list[Frame], node2: list[Frame]) -> None:
        super()._analyse(lab, node1, node2)
        for sample in self.samples:
            if isinstance(sample, ServiceSample) and sample.case in CASES:
                self._from_node2(lab, sample)

    def _from_node2(self, lab: Cluster, s: ServiceSample) -> None:
        def first(name: str, service: str | None = None, new: str | None = None) -> float | None:
            times = [
                e["mono"]
                for e in log_events(lab, "node2", name, s.offset)
                if service in (None, e.get("service")) and new in (None, e.get("new"))
            ]
            return _first_after(times, s.at)

        s.state_log = first("state changed", new="MASTER")
        s.hook_issued = first("service start", "hook")
        s.hook_done = first("service start ok", "hook")
        s.web_issued = first("service start", "web")
        path = _hook_log(lab, "node2")
        lines = path.read_text().split("\n") if path.exists() else []
        runs = [(float(w[0]) - s.offset, float(w[1]) - s.offset) for w in map(str.split, lines)
                if len(w) == 2]  # fmt: skip
        ran = next(((t, role) for t, role in runs if t >= s.at), None)
        if ran is not None:
            s.hook_ran, s.role_time = ran


def summaries(samples: list[Sample]) -> dict[str, dict[str, Summary | None]]:
    result: dict[str, dict[str, Summary | None]] = {}
    for case in CASES:
        mine = [s for s in samples if isinstance(s, ServiceSample) and s.case == case]
        result[case] = {
            key: summarize([v for s in mine if (v := get(s)) is not None])
            for key, _, get in MILESTONES
        }
    back = [s.ms(s.reply) for s in samples if s.case == "preempt"]
    result["preempt"] = {"client_http_ms": summarize([v for v in back if v is not None])}
    return result


def run_services(
    runs: int, rng: random.Random, say: Say, keep: Path | None = None
) -> dict[str, Any]:
    bench = ServicesBench(runs, rng, say, keep)
    samples = bench.run()
    return {
        "port": PORT,
        "samples": [s.as_dict() for s in samples],
        "summary": {
            case: {k: (v.as_dict() if v else None) for k, v in by_metric.items()}
            for case, by_metric in summaries(samples).items()
        },
        "problems": bench.problems,
    }


def _cell(summary: dict[str, Any] | None) -> str:
    return Summary(**summary).text(1) if summary else "-"


def _iqr(summary: dict[str, Any] | None) -> str:
    return f"{summary['p25']:.1f}..{summary['p75']:.1f}" if summary else "-"


def services_table(result: dict[str, Any]) -> list[str]:
    summary = result["summary"]
    n = {c: (summary[c].get("http_ms") or {}).get("n", 0) for c in CASES}
    lines = [
        "| milestone, ms | " + " | ".join(f"{c} (n={n[c]}): median [min..max] | IQR" for c in CASES)
        + " |",
        "|---|" + "---|---|" * len(CASES),
    ]  # fmt: skip
    for key, label, _ in MILESTONES:
        cells = " | ".join(f"{_cell(s := summary[c][key])} | {_iqr(s)}" for c in CASES)
        lines.append(f"| {label} | {cells} |")
    back = summary.get("preempt", {}).get("client_http_ms")
    lines += ["", f"node1's return (preempt): restart → its web's first 200 {_cell(back)} ms."]
    return lines

"""The machine the benchmarks ran on, and the results as Markdown tables."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.checkfail import checkfail_table
from bench.checkjitter import checkjitter_table
from bench.daemons import DAEMONS, MASTER_DOWN
from bench.services import services_table

CRASH_TARGET_MS = 20.0  # over the protocol's bound
GRACEFUL_TARGET_MS = 100.0
IDLE_TARGET_PERCENT = 5.0  # of one core, 255 vhids


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent,
    ).stdout.strip()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "cores": os.cpu_count(),
        "cpu": model,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "versions": {name: daemon.version() for name, daemon in DAEMONS.items()},
        "commit": commit,
        "load_at_start": os.getloadavg()[0],
    }


def _cell(summary: dict[str, Any] | None, digits: int = 0) -> str:
    if not summary:
        return "-"
    f = f"{{:.{digits}f}}"
    return f"{f.format(summary['median'])} [{f.format(summary['min'])}..{f.format(summary['max'])}]"


def _iqr(summary: dict[str, Any] | None) -> str:
    return "-" if not summary else f"{summary['p25']:.0f}..{summary['p75']:.0f}"


def _verdict(summary: dict[str, Any] | None, limit: float) -> str:
    if not summary:
        return "no data"
    if summary["max"] <= limit:
        return "met"
    if summary["median"] <= limit:
        return "median met, max not"
    return "not met"


def failover_table(results: dict[str, Any]) -> list[str]:
    lines = [
        "| daemon | case | n | client ms: median [min..max] | IQR | new owner's 1st advert ms "
        "| excess over bound, client ms | excess over bound, advert ms | target |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, result in results.items():
        for case, s in result["summary"].items():
            client = s.get("client_ms")
            target = ""
            if case in ("kill", "stop"):
                target = f"≤ {CRASH_TARGET_MS:.0f} ms over: " + _verdict(
                    s.get("client_excess_ms"), CRASH_TARGET_MS
                )
            elif case == "term":
                target = f"< {GRACEFUL_TARGET_MS:.0f} ms: " + _verdict(client, GRACEFUL_TARGET_MS)
            lines.append(
                f"| {name} | {case} | {client['n'] if client else 0} | {_cell(client)} "
                f"| {_iqr(client)} | {_cell(s.get('advert_ms'))} "
                f"| {_cell(s.get('client_excess_ms'))} | {_cell(s.get('advert_excess_ms'))} "
                f"| {target} |"
            )
    lines.append("")
    lines.append(
        f"Bound: node1's last advertisement before the fault + {MASTER_DOWN * 1000:.1f} ms "
        "(3·advbase + advskew/256 = 3 + 100/256 s; keepalived 3 + (256-156)/256 s)."
    )
    return lines


def steady_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| daemon | vhids | processes (master/backup) | CPU % of a core, master | backup "
        "| RSS MiB master/backup | USS MiB master/backup | target (255: < 5 %) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m, b = r["master"], r["backup"]
        uss = (
            f"{m['uss_mib']:.1f} / {b['uss_mib']:.1f}"
            if m["uss_mib"] is not None and b["uss_mib"] is not None
            else "-"
        )
        target = "-"
        if r["vhids"] == 255:
            worst = max(m["cpu_percent"], b["cpu_percent"])
            target = "met" if worst < IDLE_TARGET_PERCENT else "not met"
        lines.append(
            f"| {r['daemon']} | {r['vhids']} | {m['processes']}/{b['processes']} "
            f"| {m['cpu_percent']:.2f} | {b['cpu_percent']:.2f} "
            f"| {m['rss_mib']:.1f} / {b['rss_mib']:.1f} | {uss} | {target} |"
        )
    return lines


def jitter_table(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| daemon | vhids | intervals | mean (interval - 1 s) ms | median abs dev ms "
        "| p99 abs dev ms | max abs dev ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        j = r.get("jitter")
        if not j:
            continue
        lines.append(
            f"| {r['daemon']} | {r['vhids']} | {j['intervals']} | {j['mean_ms']:+.2f} "
            f"| {j['median_abs_ms']:.2f} | {j['p99_abs_ms']:.2f} | {j['max_abs_ms']:.2f} |"
        )
    return lines


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    out = [
        f"Run {m['date']} on {m['cores']} cores ({m['cpu']}), Linux {m['kernel']}, "
        f"Python {m['python']}, carpctl commit {m['commit']}; {versions}. "
        f"Load average at start {m['load_at_start']:.2f}.",
        "",
    ]
    if report.get("failover"):
        out += ["### Failover", "", *failover_table(report["failover"]), ""]
    steady = report.get("steady") or []
    if any(r.get("cpu_reported") for r in steady):
        out += ["### Idle CPU and memory", "", *steady_table(steady), ""]
    if any(r.get("jitter") for r in steady):
        out += ["### Advertisement jitter (node1, master)", "", *jitter_table(steady), ""]
    if report.get("checkfail"):
        out += ["### Check failure to takeover (ms)", "", *checkfail_table(report["checkfail"]), ""]
    if report.get("checkjitter"):
        out += [
            "### Advertisement jitter under 200 http checks (ms)",
            "",
            *checkjitter_table(report["checkjitter"]),
            "",
        ]
    if report.get("services"):
        out += ["### Services follow mastership (ms)", "", *services_table(report["services"]), ""]
    return "\n".join(out)

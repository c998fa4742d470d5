"""Benchmarks of carpctl's engine, side by side with ucarp and keepalived, on the lab.

    .venv/bin/python bench/run.py [--runs 5]
                                  [--only failover|idle|jitter|checkfail|checkjitter|services]
                                  [--json out.json] [--markdown out.md]

Root only (network namespaces). Every benchmark builds its own lab under a
unique name and removes it afterwards, also on failure or Ctrl-C. See
bench/README.md for what is measured and how.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``bench`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.checkfail import run_checkfail
from bench.checkjitter import run_checkjitter
from bench.daemons import DAEMONS
from bench.failover import run_failover
from bench.report import machine, markdown
from bench.services import run_services
from bench.steady import run_steady
from carpctl.lab import LabError
from carpctl.lab.netns import unavailable_reason

KINDS = ("failover", "idle", "jitter", "checkfail", "checkjitter", "services")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="failover runs per daemon (5)")
    parser.add_argument("--only", choices=KINDS, action="append", help="repeatable; default all")
    parser.add_argument(
        "--daemons",
        default=",".join(DAEMONS),
        help=f"comma-separated, from {', '.join(DAEMONS)} (default: all)",
    )
    parser.add_argument("--vhids", default="1,255", help="vhid counts for idle and jitter (1,255)")
    parser.add_argument("--window", type=float, default=30.0, help="steady-state seconds (30)")
    parser.add_argument(
        "--check-window", type=float, default=120.0, help="checkjitter's window, seconds (120)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault phases")
    parser.add_argument("--json", type=Path, help="write every sample and summary here")
    parser.add_argument("--markdown", type=Path, help="write the result tables here")
    parser.add_argument(
        "--captures", type=Path, help="keep the failover captures (and the client's) here"
    )
    args = parser.parse_args(argv)
    names = [n for n in args.daemons.split(",") if n]
    unknown = [n for n in names if n not in DAEMONS]
    if unknown:
        parser.error(f"unknown daemon {unknown[0]!r}; choose from {', '.join(DAEMONS)}")
    args.daemons = names
    args.vhids = [int(n) for n in args.vhids.split(",") if n]
    args.only = args.only or list(KINDS)
    return args


def say(text: str) -> None:
    print(text, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = unavailable_reason()
    if reason is not None:
        print(f"bench: {reason}", file=sys.stderr)
        return 2
    began = time.monotonic()
    rng = random.Random(args.seed)
    report: dict[str, Any] = {"machine": machine(), "options": {
        "runs": args.runs, "only": args.only, "daemons": args.daemons,
        "vhids": args.vhids, "window_s": args.window, "seed": args.seed,
        "check_window_s": args.check_window,
    }}  # fmt: skip
    try:
        if "failover" in args.only:
            say(f"failover: {args.runs} runs of kill, stop, term per daemon")
            report["failover"] = {
                name: run_failover(DAEMONS[name], args.runs, rng, say, args.captures)
                for name in args.daemons
            }
        if "idle" in args.only or "jitter" in args.only:
            say(f"steady state: {args.window:g} s per daemon and vhid count")
            report["steady"] = []
            for name in args.daemons:
                for count in args.vhids:
                    result = run_steady(
                        DAEMONS[name], count, args.window, "jitter" in args.only, say
                    ).as_dict()
                    result["cpu_reported"] = "idle" in args.only
                    report["steady"].append(result)
        if "checkfail" in args.only:
            say(f"checkfail: {args.runs} runs, carpctl with an http check on node1")
            keep = args.captures / "checkfail" if args.captures else None
            report["checkfail"] = run_checkfail(args.runs, rng, say, keep)
        if "checkjitter" in args.only:
            say(f"checkjitter: {args.check_window:g} s without checks, then with 200")
            report["checkjitter"] = run_checkjitter(args.check_window, say)
        if "services" in args.only:
            say(f"services: {args.runs} runs of kill and term, carpctl with two services")
            keep = args.captures / "services" if args.captures else None
            report["services"] = run_services(args.runs, rng, say, keep)
    except LabError as error:
        print(f"bench: {error}", file=sys.stderr)
        report["error"] = str(error)
        return 1
    finally:
        report["elapsed_s"] = time.monotonic() - began
        if args.json:
            args.json.write_text(json.dumps(report, indent=2) + "\n")
        text = markdown(report)
        if args.markdown:
            args.markdown.write_text(text + "\n")
    print()
    print(text)
    print(f"(took {report['elapsed_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``carpctl lab``: a CARP cluster on this machine, in network namespaces (root only)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from types import FrameType

from carpctl.cli.common import CliError, ExitCode
from carpctl.lab import logs
from carpctl.lab.demo import run_demo
from carpctl.lab.netns import LabError, UnsafeOperation, unavailable_reason
from carpctl.lab.process import Liveness
from carpctl.lab.state import DEFAULT_ROOT, check_name
from carpctl.lab.teardown import lab_names, teardown
from carpctl.lab.topology import (
    Cluster,
    FailMode,
    LabOptions,
    LabStatus,
    run_available,
)

NAME = "lab"
HELP = "a CARP cluster on this machine, in network namespaces (root)"
DESCRIPTION = """\
Build a small CARP cluster out of network namespaces: a switch (a bridge),
nodes node1..nodeN running `carpctl run` (198.51.100.1..N, advskew 0/100/200)
and a client (198.51.100.200), sharing 198.51.100.100 as vhid 1. Fail nodes,
watch who holds the virtual address, tear everything down. Nothing is
created in the root namespace; a lab's state lives in /run/carpctl-lab/NAME/
so `down` also cleans up after a crashed lab command.

  carpctl lab demo                  the whole story in about 15 seconds
  carpctl lab up --nodes 3 --ipv6
  carpctl lab status
  carpctl lab fail node1 --how kill
  carpctl lab recover node1
  carpctl lab down
"""
DEFAULT_LAB = "lab"


def _name(text: str) -> str:
    try:
        return check_name(text)
    except UnsafeOperation as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _nodes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 2 <= value <= 3:
        raise argparse.ArgumentTypeError(f"expected 2 or 3 nodes, got {text!r}")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="lab_action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, description=help)
        if name != "demo":
            sub.add_argument(
                "--name", type=_name, default=DEFAULT_LAB, help=f"lab name (default {DEFAULT_LAB})"
            )
        return sub

    up = action("up", "build a lab and start carpctl on its nodes")
    up.add_argument("--nodes", type=_nodes, default=2, help="2 or 3 nodes (default 2)")
    up.add_argument("--ipv6", action="store_true", help="also 2001:db8::N/64 and VIP 2001:db8::100")
    up.add_argument("--preempt", action="store_true", help="carp.preempt = true on every node")
    up.add_argument(
        "--no-start", action="store_true", help="only the namespaces; do not start carpctl"
    )
    up.add_argument(
        "--wait",
        type=float,
        default=6.0,
        metavar="SECONDS",
        help="wait this long for a MASTER (default 6, 0: do not wait)",
    )

    status = action("status", "per node: process, role, VIP; the client's view")
    status.add_argument("--json", action="store_true", help="one JSON object")

    fail = action("fail", "fail a node")
    fail.add_argument("node", help="node1, node2 ...")
    fail.add_argument(
        "--how",
        choices=[m.value for m in FailMode],
        required=True,
        help="kill: SIGKILL + link down (a crash); stop: SIGSTOP; term: graceful; "
        "linkdown: lab0 down",
    )

    recover = action("recover", "undo a failure (SIGCONT, link up or restart carpctl)")
    recover.add_argument("node", help="node1, node2 ...")

    down = action("down", "stop the lab's processes, delete its namespaces and files")
    down.add_argument("--all", action="store_true", help="every lab on this machine")

    action("demo", "election, crash, takeover, return, graceful stop; then tear down")


def run(args: argparse.Namespace) -> int:
    reason = unavailable_reason()
    if reason is not None:
        raise CliError(ExitCode.FAILED, f"cannot build a lab here: {reason}")
    handlers = {
        "up": _up,
        "status": _status,
        "fail": _fail,
        "recover": _recover,
        "down": _down,
        "demo": _demo,
    }
    try:
        with _terminate_as_interrupt():
            return handlers[args.lab_action](args)
    except UnsafeOperation as error:
        raise CliError(ExitCode.USAGE, str(error)) from None
    except LabError as error:
        raise CliError(ExitCode.FAILED, str(error)) from None


@contextmanager
def _terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM/SIGHUP act like Ctrl-C, so the ``finally`` blocks that tear down run."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _out(text: str = "") -> None:
    print(text, flush=True)


# -- up ------------------------------------------------------------------------


def _up(args: argparse.Namespace) -> int:
    start = not args.no_start
    if start and not run_available():
        raise CliError(
            ExitCode.FAILED,
            "this carpctl has no 'run' command yet; use --no-start for the namespaces only",
        )
    options = LabOptions(
        name=args.name, nodes=args.nodes, ipv6=args.ipv6, preempt=args.preempt, start=start
    )
    lab = Cluster.up(options)
    try:
        _describe(lab)
        if start and args.wait > 0:
            _wait_for_master(lab, args.wait)
    except BaseException:
        lab.close()
        raise
    _out(
        f"status: carpctl lab status --name {lab.name}; remove: carpctl lab down --name {lab.name}"
    )
    return ExitCode.OK


def _describe(lab: Cluster) -> None:
    state = lab.state
    _out(f"lab {lab.name}: {state.nodes} nodes, vhid {state.vhid}, VIP {', '.join(state.vips)}")
    for node in lab.nodes:
        host = lab.host(node)
        _out(
            f"  {node:7} {', '.join(host.addresses):32} advskew {host.advskew:<3} {host.namespace}"
        )
    client = lab.host("client")
    _out(f"  {'client':7} {', '.join(client.addresses):32} {'':11} {client.namespace}")
    _out(f"  files: {lab.store.path}")


def _wait_for_master(lab: Cluster, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for node in lab.nodes:
            if lab.liveness(node) is Liveness.GONE:
                tail = " | ".join(logs.tail(lab.log(node), 3)) or "(empty log)"
                raise LabError(f"carpctl exited on {node}; its log ({lab.log(node)}): {tail}")
        masters = [node for node, role in lab.roles().items() if role == "MASTER"]
        if masters:
            reason = logs.last_role(lab.log(masters[0]))
            why = f" ({reason.reason})" if reason else ""
            _out(f"{', '.join(masters)} is MASTER{why}")
            return
        time.sleep(0.1)
    _out(f"no MASTER yet after {timeout:g} s (see carpctl lab status)")


# -- status --------------------------------------------------------------------


def _status(args: argparse.Namespace) -> int:
    lab = Cluster.attach(args.name)
    status = lab.status()
    if args.json:
        document = asdict(status)
        document["holders"] = status.holders
        print(json.dumps(document, indent=2))
    else:
        _render_status(status)
    return ExitCode.OK


def _render_status(status: LabStatus) -> None:
    _out(f"lab {status.name}: VIP {', '.join(status.vips)}")
    _out(f"  {'node':7} {'process':8} {'link':5} {'role':8} {'VIP':4} {'MAC':18} why")
    for node in status.nodes:
        role = node.role or (f"({node.logged_role})" if node.logged_role else "-")
        process = node.process if node.process != "none" else "-"
        failure = f"  [failed: {node.failure}]" if node.failure else ""
        _out(
            f"  {node.name:7} {process:8} {'up' if node.link_up else 'down':5} {role:8} "
            f"{'yes' if node.holds_vip else '-':4} {node.mac:18} {node.reason}{failure}"
        )
    for view in status.client:
        if view.mac:
            who = view.owner or "unknown"
            answer = f"answered by {view.mac} = {who} ({view.neighbour_state.lower()})"
        else:
            answer = "no MAC resolved"
        reach = "reachable" if view.reachable else "NOT reachable"
        _out(f"  client: {view.vip} {reach}, {answer}")
    holders = [n.name for n in status.nodes if n.holds_vip and n.link_up]
    if len(holders) > 1:
        _out(f"  warning: more than one node holds the VIP: {', '.join(holders)}")


# -- fail / recover ------------------------------------------------------------

FAIL_TEXT = {
    FailMode.KILL: "carpctl killed (SIGKILL), link down: a crash",
    FailMode.STOP: "carpctl stopped (SIGSTOP); the kernel still answers for its addresses",
    FailMode.TERM: "carpctl stopped gracefully (SIGTERM)",
    FailMode.LINKDOWN: "lab0 down; carpctl keeps running",
}


def _fail(args: argparse.Namespace) -> int:
    lab = Cluster.attach(args.name)
    with lab.store.lock():
        how = FailMode(args.how)
        lab.fail(args.node, how)
    _out(f"{args.node}: {FAIL_TEXT[how]}")
    return ExitCode.OK


def _recover(args: argparse.Namespace) -> int:
    lab = Cluster.attach(args.name)
    with lab.store.lock():
        steps = lab.recover(args.node)
    _out(f"{args.node}: {', '.join(steps) if steps else 'nothing to undo'}")
    return ExitCode.OK


# -- down ----------------------------------------------------------------------


def _down(args: argparse.Namespace) -> int:
    names = lab_names(DEFAULT_ROOT) if args.all else [args.name]
    if args.all and not names:
        _out("no labs")
    failed = False
    for name in names:
        report = teardown(name, DEFAULT_ROOT)
        if not report.found:
            _out(f"lab {name}: nothing to remove")
            continue
        stopped = ", ".join(str(pid) for pid in report.stopped) or "none"
        _out(f"lab {name}: removed {len(report.namespaces)} namespaces; stopped PIDs: {stopped}")
        for problem in report.problems:
            print(f"lab {name}: {problem}", file=sys.stderr)
            failed = True
    return ExitCode.FAILED if failed else ExitCode.OK


# -- demo ----------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    if not run_available():
        raise CliError(ExitCode.FAILED, "the demo needs 'carpctl run', which this carpctl lacks")
    try:
        run_demo(_out)
    except KeyboardInterrupt:
        _out("interrupted; the lab was removed")
        return 130
    return ExitCode.OK

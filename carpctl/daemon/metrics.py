"""Prometheus metrics on ``[carpctl] metrics_listen`` (off when empty).

Read at scrape time: the HTTP thread asks the event loop for ``Daemon.status()`` and
a few engine counters (``run_coroutine_threadsafe``): one consistent moment, nothing
on the loop read from another thread. Counted here, on the loop, is only what the
daemon does not count: state changes by reason, check state changes. Labels are
names from the configuration (or ``--as NAME``) and enums, never free text.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address
from typing import TYPE_CHECKING, Any

from prometheus_client import start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import CollectorRegistry

from carpctl import __version__
from carpctl.core.checkstate import Result, Transition
from carpctl.core.checkstate import State as Verdict
from carpctl.core.effects import State, StateChanged
from carpctl.core.errors import DropReason
from carpctl.core.ledger import Source
from carpctl.core.steps import Actual
from carpctl.daemon import logs

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from carpctl.daemon.engine import VirtualHost
    from carpctl.daemon.run import Daemon

SNAPSHOT_TIMEOUT = 2.0  # seconds a scrape waits for the loop (on the BSDs status runs ifconfig)
SERVICE_RESULTS = ("ok", "failed", "timeout")
V, C, S = ("vhid", "interface"), ("check",), ("service",)
HELP: dict[str, tuple[str, tuple[str, ...]]] = {  # carpctl_NAME: (help, labels); *_total: counters
    "info": ("Version, backend and node name", ("version", "backend", "node")),
    "demotion": ("The ledger's total demotion", ()),
    "demotion_source": ("Demotion per ledger source", ("source",)),
    "demotion_entry": ("Demotion per ledger entry", ("entry", "source")),
    "vhid_role": ("0 INIT, 1 BACKUP, 2 MASTER", V),
    "vhid_state": ("1 for the vhid's current state", (*V, "state")),
    "vhid_state_seconds": ("Time in the current state", V),
    "vhid_advbase_seconds": ("Configured advbase", V),
    "vhid_advskew": ("Configured advskew", V),
    "vhid_effective_skew": ("Advertised skew: advskew + demotion, 0..240", V),
    "vhid_split_brain": ("1 while MASTER and another master was seen lately", V),
    "vhid_split_brain_sightings_total": ("Other masters seen while MASTER", V),
    "vhid_transitions_total": ("State changes (BSD: reason kernel)", (*V, "from", "to", "reason")),
    "advertisements_sent_total": ("Advertisements sent", V),
    "advertisement_send_errors_total": ("Advertisements that could not be sent", V),
    "packets_accepted_total": ("Advertisements accepted", ("interface",)),
    "packets_rejected_total": ("Packets rejected, by reason", ("interface", "reason")),
    "check_state": ("1 for the check's state (after rise/fall)", (*C, "state")),
    "check_last_result": ("1 for the last run's result", (*C, "result")),
    "check_last_duration_seconds": ("How long the last run took", C),
    "check_last_run_timestamp_seconds": ("When the last run ended", C),
    "check_hanging": ("1 while an abandoned run still hangs", C),
    "check_transitions_total": ("Check state changes", (*C, "from", "to")),
    "service_desired_running": ("1 when the service should run here", S),
    "service_actual": ("1 for what the service is seen doing", (*S, "state")),
    "service_last_action_duration_seconds": ("How long the last action took", (*S, "action")),
    "service_last_action_result": ("1 for the last action's result", (*S, "result")),
    "service_last_action_timestamp_seconds": ("When the last action ended", S),
    "service_flaps": ("Eligibility changes within the flap window", S),
    "service_stop_failed": ("1 while a stop has failed", S),
    "kernel_demotion": ("The kernel's demotion (BSD), carpctl's and the rest", ("share",)),
    "metrics_snapshot_ok": ("1 when the daemon's state could be read", ()),
    "metrics_snapshot_seconds": ("Time to read the state, waiting for the loop too", ()),
}
_LABEL = r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)*(?![0-9]+$){_LABEL}")  # 300.1.2.3 is no name


def parse_listen(text: str) -> tuple[str, int] | None:
    """``127.0.0.1:9723``, ``[::1]:9723``, ``localhost:9723`` -> (host, port); None for "".

    ValueError, one sentence saying what is wrong, for anything else."""
    if text == "":
        return None
    match = re.fullmatch(r"\[(.*)\]:(.*)", text)
    host, colon, port = (match[1], ":", match[2]) if match else text.rpartition(":")
    if not colon or not host or (text.startswith("[") and not match):
        problem = 'write address:port, e.g. "127.0.0.1:9723" or "[::1]:9723"'
    elif match and not _parses(IPv6Address, host):
        problem = f"{host!r} in brackets is not an IPv6 address"
    elif not match and ":" in host:
        problem = f"an IPv6 address goes in brackets: [{host}]:{port}"
    elif not match and not _parses(IPv4Address, host) and not _HOSTNAME.fullmatch(host):
        problem = f"{host!r} is neither an IPv4 address nor a host name"
    elif not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        problem = "the port must be a number from 1 to 65535"
    else:
        return host, int(port)
    raise ValueError(f"{text!r}: {problem}")


def _parses(kind: type[IPv4Address | IPv6Address], host: str) -> bool:
    try:
        kind(host)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Snapshot:
    status: dict[str, Any]  # Daemon.status()
    at: float  # wall clock
    split_brain: dict[str, int]  # vhid -> sightings (embedded engine)
    accepted: dict[str, int]  # interface -> advertisements accepted (embedded engine)
    transitions: dict[tuple[str, str, str, str], int]
    check_transitions: dict[tuple[str, str, str], int]


class _Families:
    """Families by name, made on first use from HELP; those never used are not shown."""

    def __init__(self) -> None:
        self.made: dict[str, GaugeMetricFamily | CounterMetricFamily] = {}

    def add(self, name: str, value: float, *labels: str) -> None:
        if name not in self.made:
            doc, names = HELP[name]
            kind = CounterMetricFamily if name.endswith("_total") else GaugeMetricFamily
            self.made[name] = kind(f"carpctl_{name}", doc, labels=names)
        self.made[name].add_metric(labels, value)

    def one_of(self, name: str, current: object, choices: Iterable[str], *labels: str) -> None:
        for choice in choices:
            self.add(name, 1 if str(current) == choice else 0, *labels, choice)


def families(snap: Snapshot) -> list[Metric]:
    """Every metric of one snapshot (pure: no clock, no loop)."""
    out, status, embedded = _Families(), snap.status, snap.status["backend"] == "embedded"
    out.add("info", 1, __version__, str(status["backend"]), str(status["node"]))
    out.add("demotion", status["demotion"]["total"])
    entries = status["demotion"]["entries"]
    for source in map(str, Source):
        amount = sum(e["amount"] for e in entries if e["source"] == source)
        out.add("demotion_source", amount, source)
    for entry in entries:
        out.add("demotion_entry", entry["amount"], entry["name"], entry["source"])
    for row in status["vhids"]:
        v = (row["name"], row["interface"])
        if row["state"] in State.__members__:
            out.add("vhid_role", State[row["state"]].value, *v)
        out.one_of("vhid_state", row["state"], State.__members__, *v)
        out.add("vhid_state_seconds", max(0.0, snap.at - row["since"]), *v)
        out.add("vhid_advbase_seconds", row["advbase"], *v)
        out.add("vhid_advskew", row["advskew"], *v)
        out.add("vhid_effective_skew", row["effective_skew"], *v)
        out.add("vhid_split_brain", int(row["split_brain"]), *v)
        if embedded:  # the BSD kernels keep these to themselves
            out.add("vhid_split_brain_sightings_total", snap.split_brain.get(v[0], 0), *v)
            out.add("advertisements_sent_total", row["sent"], *v)
            out.add("advertisement_send_errors_total", row["send_errors"], *v)
    for (vhid, old, new, reason), count in sorted(snap.transitions.items()):
        out.add("vhid_transitions_total", count, vhid, vhid.partition("@")[2], old, new, reason)
    for ifname, accepted in sorted(snap.accepted.items()):
        out.add("packets_accepted_total", accepted, ifname)
    for ifname, drops in sorted(status["drops"].items()):
        for reason in map(str, DropReason):
            out.add("packets_rejected_total", drops.get(reason, 0), ifname, reason)
    for row in status["checks"]:
        name, last = row["name"], row["last"]
        out.one_of("check_state", row["state"], map(str, Verdict), name)
        if last is not None:
            out.one_of("check_last_result", last["status"], map(str, Result), name)
            out.add("check_last_duration_seconds", last["duration"], name)
            out.add("check_last_run_timestamp_seconds", last["at"], name)
        out.add("check_hanging", int(bool(row.get("hanging"))), name)
    for (name, old, new), count in sorted(snap.check_transitions.items()):
        out.add("check_transitions_total", count, name, old, new)
    for row in status.get("services", []):
        name, last = row["name"], row["last"]
        out.add("service_desired_running", int(row["desired"] == "running"), name)
        out.one_of("service_actual", row["actual"], map(str, Actual), name)
        if last is not None:
            out.add("service_last_action_duration_seconds", last["duration"], name, last["action"])
            out.one_of("service_last_action_result", last["result"], SERVICE_RESULTS, name)
            out.add("service_last_action_timestamp_seconds", last["at"], name)
        out.add("service_flaps", row["flaps"], name)
        out.add("service_stop_failed", int(row["stop_failed"]), name)
    if status.get("kernel") is not None:
        out.add("kernel_demotion", status["kernel"]["carpctl"], "carpctl")
        out.add("kernel_demotion", status["kernel"]["other"], "other")
    return list(out.made.values())


class Metrics:
    """A collector on a registry of its own: counts from ``__init__``, serves ``start``-``stop``."""

    def __init__(self, daemon: Daemon, listen: str | tuple[str, int]) -> None:
        """``listen``: as in the config, or (host, port) with port 0 for any free one."""
        address = parse_listen(listen) if isinstance(listen, str) else listen
        if address is None:
            raise ValueError("metrics_listen is empty: metrics are off")
        self.daemon, self.address = daemon, address
        self.transitions: Counter[tuple[str, str, str, str]] = Counter()  # vhid, from, to, why
        self.check_transitions: Counter[tuple[str, str, str]] = Counter()  # check, from, to
        self.loop: asyncio.AbstractEventLoop | None = None  # set while serving
        self.port = 0  # the port bound, once serving
        self.registry = CollectorRegistry()
        self.registry.register(self)
        self._server: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def collect(self) -> list[Metric]:
        started, out = time.monotonic(), _Families()
        found = self._families()
        out.add("metrics_snapshot_ok", int(found is not None))
        out.add("metrics_snapshot_seconds", time.monotonic() - started)
        return list(out.made.values()) + (found or [])

    async def snapshot(self) -> Snapshot:
        """On the loop: everything a scrape shows, copied at one moment."""
        status, engine = await self.daemon.status({}), self.daemon.engine
        return Snapshot(
            status,
            time.time(),
            {h.name: h.split_brain for h in engine.hosts} if engine else {},
            {i: r.accepted for i, r in engine.receivers.items()} if engine else {},
            dict(self.transitions),
            dict(self.check_transitions),
        )

    def _families(self) -> list[Metric] | None:
        """A snapshot on the loop within SNAPSHOT_TIMEOUT; None (and a log line) on failure."""
        if self.loop is None:  # not serving (yet, or any more)
            return None
        try:
            future = asyncio.run_coroutine_threadsafe(self.snapshot(), self.loop)
            return families(future.result(timeout=SNAPSHOT_TIMEOUT))
        except FutureTimeout:
            future.cancel()
            logs.get().warning("metrics: no state within the timeout", timeout=SNAPSHOT_TIMEOUT)
        except Exception as error:  # the scrape says so; the daemon goes on
            logs.get().error("metrics: state unreadable", error=repr(error))
        return None

    @classmethod
    def for_daemon(cls, daemon: Daemon) -> Metrics | None:
        """None when off; else counting state changes (engine's, or kernel's as reported)."""
        if not daemon.config.carpctl.metrics_listen:
            return None
        metrics = cls(daemon, daemon.config.carpctl.metrics_listen)
        if daemon.engine is not None:
            daemon.engine.listeners.append(metrics.state_changed)
        else:
            daemon.roles.listeners.append(metrics.role_reported)
        return metrics

    def state_changed(self, host: VirtualHost, change: StateChanged) -> None:
        """An engine listener (reason: Reason's name in lower case)."""
        why = change.reason.name.lower()
        self.transitions[host.name, change.old.name, change.new.name, why] += 1

    def role_reported(self, name: str, old: str, new: str, at: float) -> None:
        """A role book listener (BSD backends: devd/ifstated events and polls)."""
        self.transitions[name, old, new, "kernel"] += 1

    def check_changed(self, name: str, transition: Transition) -> None:
        self.check_transitions[name, str(transition.old), str(transition.new)] += 1

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Bind and serve in a thread; OSError naming the address when that fails."""
        self.loop, (host, port) = loop, self.address
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        try:
            self._server, self._thread = start_http_server(port, host, registry=self.registry)
        except OSError as error:
            message = f"cannot serve metrics on {where}: {error.strerror or error}"
            raise OSError(error.errno, message) from None
        self._thread.name, self.port = "carpctl-metrics", int(self._server.server_address[1])
        logs.get().info("serving metrics", listen=where, port=self.port)

    def _shutdown(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.shutdown()  # serve_forever returns within its poll interval
            self._server.server_close()
            self._thread.join(timeout=5)
        self._server = self._thread = None

    async def stop(self) -> None:
        """Stop serving; the loop runs meanwhile, so a scrape in flight still gets its answer."""
        await asyncio.to_thread(self._shutdown)
        self.loop = None

"""Prometheus metrics: the listen string, the collector against a fake daemon, real scrapes.

The fake daemon answers ``status`` like ``Daemon.status()``; the collector
reads it on the test's event loop while the HTTP thread serves the scrape,
as in the daemon. The last test scrapes a real ``carpctl run`` (FreeBSD
backend, fake kernel) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from carpctl.core.checkstate import Result, Transition
from carpctl.core.checkstate import State as Verdict
from carpctl.core.effects import Reason, State, StateChanged
from carpctl.daemon import metrics as metrics_module
from carpctl.daemon.metrics import HELP, Metrics, Snapshot, families, parse_listen

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fakes"))

from fakekernel import FakeKernel

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


# -- the listen string ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", None),
        ("127.0.0.1:9723", ("127.0.0.1", 9723)),
        ("0.0.0.0:9100", ("0.0.0.0", 9100)),
        ("[::1]:9723", ("::1", 9723)),
        ("[::]:9723", ("::", 9723)),
        ("localhost:9723", ("localhost", 9723)),
        ("metrics-1.example.net:65535", ("metrics-1.example.net", 65535)),
    ],
)
def test_listen_strings_that_parse(text: str, expected: tuple[str, int] | None) -> None:
    assert parse_listen(text) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("9723", "write address:port"),
        ("127.0.0.1", "write address:port"),
        (":9723", "write address:port"),
        ("[::1]", "write address:port"),
        ("[::1]9723", "write address:port"),
        ("::1:9723", "an IPv6 address goes in brackets: [::1]:9723"),
        ("[127.0.0.1]:9723", "in brackets is not an IPv6 address"),
        ("300.1.2.3:9723", "neither an IPv4 address nor a host name"),
        ("-bad:9723", "neither an IPv4 address nor a host name"),
        ("a b:9723", "neither an IPv4 address nor a host name"),
        ("127.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:65536", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:http", "the port must be a number from 1 to 65535"),
        ("[::1]:", "the port must be a number from 1 to 65535"),
        ("127.0.0.1:٩٧", "the port must be a number from 1 to 65535"),
    ],
)
def test_listen_strings_refused_with_one_sentence(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)) as caught:
        parse_listen(text)
    message = str(caught.value)
    assert message.startswith(repr(text))
    assert "\n" not in message


# -- a fake daemon ------------------------------------------------------------------


def vhid_row(name: str, state: str, since: float, skew: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "vhid": int(name.partition("@")[0]),
        "interface": name.partition("@")[2],
        "state": state,
        "since": since,
        "advbase": 1,
        "advskew": skew,
        "effective_skew": skew,
        "master_seen": None,
        "sent": 10,
        "send_errors": 1,
        "split_brain": False,
    }


class FakeDaemon:
    """What the collector reads of a Daemon: ``status()`` and the engine's counters."""

    def __init__(self) -> None:
        self.host = SimpleNamespace(name="1@eth0", split_brain=0)
        self.receiver = SimpleNamespace(accepted=5)
        self.engine = SimpleNamespace(hosts=[self.host], receivers={"eth0": self.receiver})
        self.entered = asyncio.Event()
        self.delay = 0.0
        self.state: dict[str, Any] = {
            "backend": "embedded",
            "node": "node1",
            "demotion": {"total": 0, "entries": []},
            "vhids": [vhid_row("1@eth0", "MASTER", time.time() - 30)],
            "checks": [
                {
                    "name": "web",
                    "kind": "http",
                    "state": "passing",
                    "demote": 50,
                    "hanging": False,
                    "last": {"status": "ok", "detail": "200", "duration": 0.012, "at": 1.0},
                }
            ],
            "services": [
                {
                    "name": "haproxy",
                    "desired": "running",
                    "actual": "running",
                    "last": {
                        "action": "start",
                        "result": "ok",
                        "detail": "",
                        "duration": 0.25,
                        "at": 2.0,
                    },
                    "flaps": 1,
                    "stop_failed": False,
                }
            ],
            "drops": {"eth0": {"badauth": 3}},
            "kernel": None,
        }

    async def status(self, args: dict[str, Any]) -> dict[str, Any]:
        self.entered.set()
        await asyncio.sleep(self.delay)
        return copy.deepcopy(self.state)

    def demote(self, name: str, source: str, amount: int) -> None:
        entries = self.state["demotion"]["entries"]
        entries.append({"name": name, "source": source, "amount": amount, "since": 0.0})
        self.state["demotion"]["total"] = sum(e["amount"] for e in entries)


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return parse(text)


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def serving(
    daemon: FakeDaemon, body: Callable[[Metrics, str], Awaitable[None]], host: str = "127.0.0.1"
) -> None:
    """Run ``body(metrics, url)`` on a loop while the server runs; then stop it cleanly."""

    async def main() -> None:
        metrics = Metrics(daemon, (host, 0))  # type: ignore[arg-type]
        metrics.start(asyncio.get_running_loop())
        bracketed = f"[{host}]" if ":" in host else host
        try:
            await body(metrics, f"http://{bracketed}:{metrics.port}/metrics")
        finally:
            await metrics.stop()
        assert not any(t.name == "carpctl-metrics" for t in threading.enumerate())
        with (
            pytest.raises(ConnectionRefusedError),
            socket.create_connection((host, metrics.port), timeout=1),
        ):
            pass  # the port is closed

    asyncio.run(main())


def failover(metrics: Metrics, daemon: FakeDaemon, new: State, reason: Reason) -> None:
    row = daemon.state["vhids"][0]
    old = State[row["state"]]
    row["state"], row["since"] = new.name, time.time()
    metrics.state_changed(daemon.host, StateChanged(1, old, new, reason))  # type: ignore[arg-type]


# -- scrapes over HTTP --------------------------------------------------------------


def check_first_scrape(first: Samples) -> None:
    """The fake daemon's initial state, as scraped."""
    v = {"vhid": "1@eth0", "interface": "eth0"}
    assert value(first, "carpctl_metrics_snapshot_ok") == 1
    assert value(first, "carpctl_vhid_role", **v) == 2
    assert value(first, "carpctl_vhid_state", **v, state="MASTER") == 1
    assert value(first, "carpctl_vhid_state", **v, state="BACKUP") == 0
    assert 29 <= (value(first, "carpctl_vhid_state_seconds", **v) or 0) < 60
    assert value(first, "carpctl_advertisements_sent_total", **v) == 10
    assert value(first, "carpctl_advertisement_send_errors_total", **v) == 1
    assert value(first, "carpctl_packets_accepted_total", interface="eth0") == 5
    rejected = {"interface": "eth0"}
    assert value(first, "carpctl_packets_rejected_total", **rejected, reason="badauth") == 3
    assert value(first, "carpctl_packets_rejected_total", **rejected, reason="badsum") == 0
    assert value(first, "carpctl_demotion") == 0
    assert value(first, "carpctl_demotion_source", source="operator") == 0
    assert value(first, "carpctl_check_state", check="web", state="passing") == 1
    assert value(first, "carpctl_check_last_result", check="web", result="ok") == 1
    assert value(first, "carpctl_check_last_duration_seconds", check="web") == 0.012
    haproxy = {"service": "haproxy"}
    assert value(first, "carpctl_service_last_action_result", **haproxy, result="ok") == 1
    assert value(first, "carpctl_service_last_action_result", **haproxy, result="failed") == 0
    took = value(first, "carpctl_service_last_action_duration_seconds", **haproxy, action="start")
    assert took == 0.25
    assert value(first, "carpctl_service_desired_running", **haproxy) == 1
    assert value(first, "carpctl_service_flaps", **haproxy) == 1
    assert value(first, "carpctl_kernel_demotion", share="carpctl") is None  # embedded


def test_scrape_shows_the_state_and_follows_a_failover_and_a_demotion() -> None:
    daemon = FakeDaemon()

    async def body(metrics: Metrics, url: str) -> None:
        v = {"vhid": "1@eth0", "interface": "eth0"}
        check_first_scrape(await asyncio.to_thread(scrape, url))

        # A failover: the role flips, the transition is counted with its reason.
        failover(metrics, daemon, State.BACKUP, Reason.MORE_FREQUENT)
        second = await asyncio.to_thread(scrape, url)
        moved = {**v, "from": "MASTER", "to": "BACKUP", "reason": "more_frequent"}
        assert value(second, "carpctl_vhid_role", **v) == 1
        assert value(second, "carpctl_vhid_state", **v, state="MASTER") == 0
        assert value(second, "carpctl_vhid_transitions_total", **moved) == 1
        assert (value(second, "carpctl_vhid_state_seconds", **v) or 99) < 5
        failover(metrics, daemon, State.MASTER, Reason.MASTER_TIMED_OUT)
        failover(metrics, daemon, State.BACKUP, Reason.MORE_FREQUENT)
        third = await asyncio.to_thread(scrape, url)
        assert value(third, "carpctl_vhid_transitions_total", **moved) == 2
        back = {**v, "from": "BACKUP", "to": "MASTER", "reason": "master_timed_out"}
        assert value(third, "carpctl_vhid_transitions_total", **back) == 1

        # A demotion: the total, its source and its entry.
        daemon.demote("operator", "operator", 150)
        daemon.demote("check:web", "check", 50)
        fourth = await asyncio.to_thread(scrape, url)
        assert value(fourth, "carpctl_demotion") == 200
        assert value(fourth, "carpctl_demotion_source", source="operator") == 150
        assert value(fourth, "carpctl_demotion_source", source="check") == 50
        assert value(fourth, "carpctl_demotion_source", source="maintenance") == 0
        assert value(fourth, "carpctl_demotion_entry", entry="operator", source="operator") == 150

        # A check state change is counted; a split brain sighting read from the engine.
        metrics.check_changed(
            "web", Transition(Verdict.PASSING, Verdict.FAILING, Result.TIMEOUT, 2)
        )
        daemon.host.split_brain = 4
        fifth = await asyncio.to_thread(scrape, url)
        flap = {"check": "web", "from": "passing", "to": "failing"}
        assert value(fifth, "carpctl_check_transitions_total", **flap) == 1
        assert value(fifth, "carpctl_vhid_split_brain_sightings_total", **v) == 4

    serving(daemon, body)


def test_every_metric_is_named_and_documented_as_declared() -> None:
    daemon = FakeDaemon()

    async def body(metrics: Metrics, url: str) -> None:
        failover(metrics, daemon, State.BACKUP, Reason.BOW_OUT)
        text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read())
        for family in text_string_to_metric_families(text.decode()):
            short = family.name.removeprefix("carpctl_")
            key = f"{short}_total" if family.type == "counter" else short
            assert key in HELP, family.name
            assert family.documentation == HELP[key][0]
            for sample in family.samples:
                assert set(sample.labels) == set(HELP[key][1]), sample
                assert "reason" not in sample.labels or " " not in sample.labels["reason"]

    serving(daemon, body)


def test_a_slow_loop_gives_snapshot_ok_0_not_a_hung_scrape(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "SNAPSHOT_TIMEOUT", 0.2)
    daemon = FakeDaemon()
    daemon.delay = 5.0

    async def body(metrics: Metrics, url: str) -> None:
        started = time.monotonic()
        samples = await asyncio.to_thread(scrape, url)
        assert time.monotonic() - started < 2
        assert value(samples, "carpctl_metrics_snapshot_ok") == 0
        assert value(samples, "carpctl_vhid_role", vhid="1@eth0", interface="eth0") is None
        daemon.delay = 0.0
        again = await asyncio.to_thread(scrape, url)
        assert value(again, "carpctl_metrics_snapshot_ok") == 1

    serving(daemon, body)


def test_a_status_the_collector_cannot_read_is_a_0_not_a_500() -> None:
    daemon = FakeDaemon()
    del daemon.state["vhids"][0]["effective_skew"]  # a daemon of another shape: a bug

    async def body(metrics: Metrics, url: str) -> None:
        samples = await asyncio.to_thread(scrape, url)
        assert value(samples, "carpctl_metrics_snapshot_ok") == 0
        daemon.state["vhids"][0]["effective_skew"] = 0
        samples = await asyncio.to_thread(scrape, url)
        assert value(samples, "carpctl_metrics_snapshot_ok") == 1

    serving(daemon, body)


def test_a_scrape_in_flight_when_stopping_still_gets_its_answer() -> None:
    daemon = FakeDaemon()
    daemon.delay = 0.3

    async def main() -> None:
        metrics = Metrics(daemon, ("127.0.0.1", 0))  # type: ignore[arg-type]
        metrics.start(asyncio.get_running_loop())
        url = f"http://127.0.0.1:{metrics.port}/metrics"
        pending = asyncio.ensure_future(asyncio.to_thread(scrape, url))
        await daemon.entered.wait()
        await metrics.stop()
        samples = await pending
        assert value(samples, "carpctl_metrics_snapshot_ok") == 1

    asyncio.run(main())


def test_ipv6_loopback() -> None:
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        pytest.skip("no IPv6 loopback here")
    daemon = FakeDaemon()

    async def body(metrics: Metrics, url: str) -> None:
        samples = await asyncio.to_thread(scrape, url)
        assert value(samples, "carpctl_vhid_role", vhid="1@eth0", interface="eth0") == 2

    serving(daemon, body, host="::1")


def test_a_busy_port_is_refused_naming_the_address() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        metrics = Metrics(FakeDaemon(), f"127.0.0.1:{port}")  # type: ignore[arg-type]

        async def main() -> None:
            with pytest.raises(OSError, match=f"cannot serve metrics on 127.0.0.1:{port}: "):
                metrics.start(asyncio.get_running_loop())

        asyncio.run(main())


# -- without a server -----------------------------------------------------------------


def test_not_serving_collects_only_the_snapshot_failure() -> None:
    metrics = Metrics(FakeDaemon(), ("127.0.0.1", 0))  # type: ignore[arg-type]
    names = {f.name for f in metrics.collect()}
    assert names == {"carpctl_metrics_snapshot_ok", "carpctl_metrics_snapshot_seconds"}
    assert metrics.collect()[0].samples[0].value == 0


def test_off_by_default_and_counting_the_right_listeners() -> None:
    def daemon(listen: str, engine: bool) -> Any:
        return SimpleNamespace(
            config=SimpleNamespace(carpctl=SimpleNamespace(metrics_listen=listen)),
            engine=SimpleNamespace(listeners=[]) if engine else None,
            roles=SimpleNamespace(listeners=[]),
        )

    off = daemon("", engine=True)
    assert Metrics.for_daemon(off) is None
    assert off.engine.listeners == []
    embedded = daemon("127.0.0.1:9723", engine=True)
    metrics = Metrics.for_daemon(embedded)
    assert metrics is not None
    assert embedded.engine.listeners == [metrics.state_changed]
    assert embedded.roles.listeners == []  # the engine's changes, with their reasons
    kernel = daemon("[::1]:9723", engine=False)
    metrics = Metrics.for_daemon(kernel)
    assert metrics is not None
    assert kernel.roles.listeners == [metrics.role_reported]
    with pytest.raises(ValueError, match="write address:port"):
        Metrics.for_daemon(daemon("localhost", engine=True))


def test_kernel_backends_show_the_kernel_split_and_not_the_engine_counters() -> None:
    status = {
        "backend": "freebsd",
        "node": "fw1",
        "demotion": {
            "total": 50,
            "entries": [{"name": "operator", "source": "operator", "amount": 50}],
        },
        "vhids": [vhid_row("1@em0", "BACKUP", 100.0)],
        "checks": [],
        "services": [],
        "drops": {},
        "kernel": {"total": 70, "carpctl": 50, "other": 20},
    }
    snap = Snapshot(status, 160.0, {}, {}, {("1@em0", "MASTER", "BACKUP", "kernel"): 1}, {})
    samples: Samples = {
        (s.name, frozenset(s.labels.items())): s.value for f in families(snap) for s in f.samples
    }
    v = {"vhid": "1@em0", "interface": "em0"}
    assert value(samples, "carpctl_kernel_demotion", share="carpctl") == 50
    assert value(samples, "carpctl_kernel_demotion", share="other") == 20
    assert value(samples, "carpctl_vhid_state_seconds", **v) == 60
    assert value(samples, "carpctl_vhid_role", **v) == 1
    moved = {**v, "from": "MASTER", "to": "BACKUP", "reason": "kernel"}
    assert value(samples, "carpctl_vhid_transitions_total", **moved) == 1
    assert (
        value(
            samples,
            "carpctl_info",
            version=metrics_module.__version__,
            backend="freebsd",
            node="fw1",
        )
        == 1
    )
    names = {name for name, _ in samples}
    assert "carpctl_advertisements_sent_total" not in names  # the kernel keeps these
    assert "carpctl_packets_rejected_total" not in names


# -- a real daemon ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def freebsd_daemon(tmp_path: Path) -> Iterator[tuple[FakeKernel, Path, str]]:
    kernel = FakeKernel.create(tmp_path / "kernel", "freebsd")
    config = tmp_path / "carpctl.toml"
    port = free_port()
    config.write_text(
        "[carpctl]\n"
        'backend = "freebsd"\n'
        f'state_dir = "{tmp_path / "state"}"\n'
        f'control_socket = "{tmp_path / "carpctl.sock"}"\n'
        'log_format = "json"\n'
        f'metrics_listen = "127.0.0.1:{port}"\n'
    )
    log = tmp_path / "daemon.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "carpctl", "run", "-c", str(config)],
            env=kernel.env,
            stdout=out,
            stderr=out,
        )
    try:
        yield kernel, config, f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        assert process.wait(timeout=10) == 0, log.read_text()


def wait_scrape(url: str, ready: Callable[[Samples], bool]) -> Samples:
    deadline, samples = time.monotonic() + 15, {}
    while time.monotonic() < deadline:
        try:
            samples = scrape(url)
        except OSError:
            samples = {}
        if samples and ready(samples):
            return samples
        time.sleep(0.1)
    raise AssertionError(f"not ready in time: {sorted(samples)[:20]}")


def test_a_real_bsd_daemon_serves_its_state(
    freebsd_daemon: tuple[FakeKernel, Path, str],
) -> None:
    kernel, config, url = freebsd_daemon
    v = {"vhid": "1@em0", "interface": "em0"}
    samples = wait_scrape(url, lambda s: value(s, "carpctl_vhid_role", **v) == 2)
    assert value(samples, "carpctl_metrics_snapshot_ok") == 1
    assert value(samples, "carpctl_vhid_role", vhid="2@em1", interface="em1") == 1
    assert value(samples, "carpctl_kernel_demotion", share="carpctl") == 0

    def ctl(*args: str) -> None:
        argv = [sys.executable, "-m", "carpctl", "-c", str(config), *args]
        done = subprocess.run(
            argv, check=False, env=kernel.env, capture_output=True, text=True, timeout=30
        )
        assert done.returncode == 0, done.stderr

    ctl("demote", "+50")
    ctl("event", "1@em0", "BACKUP")
    moved = {**v, "from": "MASTER", "to": "BACKUP", "reason": "kernel"}
    samples = wait_scrape(url, lambda s: value(s, "carpctl_kernel_demotion", share="carpctl") == 50)
    assert value(samples, "carpctl_demotion") == 50
    assert value(samples, "carpctl_demotion_entry", entry="operator", source="operator") == 50
    assert value(samples, "carpctl_vhid_transitions_total", **moved) == 1
    assert value(samples, "carpctl_vhid_effective_skew", **v) == 50  # FreeBSD adds demotion


def test_the_sample_grafana_dashboard_asks_only_for_metrics_carpctl_serves() -> None:
    dashboard = Path(__file__).resolve().parents[2] / "examples" / "grafana-carpctl.json"
    text = dashboard.read_text()
    json.loads(text)
    asked = set(re.findall(r"carpctl_[a-z_]+", text))
    assert asked
    assert asked <= {f"carpctl_{name}" for name in HELP}, asked - {f"carpctl_{n}" for n in HELP}

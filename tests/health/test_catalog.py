"""Every stock check in checks/: it parses, and it runs against a stand-in for its target.

What each run proves (sshd, nginx, haproxy and postgresql are not installed here):

* pfsync: the entry's interface and defaults drive a fake ifconfig printing
  FreeBSD 14 output, in sync and with a bulk update outstanding.
* sshd, postgresql, dns: the entry parses to a tcp check of 127.0.0.1 on the
  usual port; run with only the port overridden, against a listener the
  test opens (what the check needs of the real daemon: an accepted connect).
* nginx, haproxy: the entry's own selectors, unchanged, find a Python
  process given the daemon's process name (prctl) and command line (argv[0])
  as ps shows them for the real daemon, and stop finding it once it dies;
  an nginx worker without its master is not counted.
* http-health: against a real HTTP server, with the url the config must give.
* maintenance-file: with the path moved into a temporary directory.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from carpctl.core.checkstate import Result
from carpctl.daemon.config import ConfigError
from carpctl.health import catalog
from carpctl.health.kinds import probe
from carpctl.health.spec import (
    CheckSpec,
    FileParams,
    HttpParams,
    Kind,
    PfsyncParams,
    ProcessParams,
    TcpParams,
    parse_checks,
)

from .conftest import CONFIG, HttpServer, Mimic, closed_port
from .test_pfsync import FBSD14, GROUPS, UP, fake_ifconfig

CHECKS_DIR = Path(__file__).resolve().parents[2] / "checks"
TESTED = {
    "pfsync",
    "sshd",
    "nginx",
    "haproxy",
    "postgresql",
    "http-health",
    "dns",
    "maintenance-file",
}


def use(name: str, **overrides: Any) -> CheckSpec:
    (spec,) = parse_checks(CONFIG, [{"use": name, **overrides}], catalog_dirs=[CHECKS_DIR])
    return spec


def test_every_entry_is_tested_and_listed_in_the_readme() -> None:
    assert set(catalog.available([CHECKS_DIR])) == TESTED
    readme = (CHECKS_DIR / "README.md").read_text()
    for name in TESTED:
        assert f"| `{name}` |" in readme
    # the default search path finds them (a checkout / editable install)
    assert catalog.find("nginx", catalog.default_dirs()) == CHECKS_DIR / "nginx.toml"


@pytest.mark.parametrize("name", sorted(TESTED))
def test_every_entry_parses_and_has_a_comment(name: str) -> None:
    text = (CHECKS_DIR / f"{name}.toml").read_text()
    assert text.startswith("# "), "say what it checks and what it needs"
    assert "Needs:" in text
    extra = {"url": "http://127.0.0.1/"} if name == "http-health" else {}
    spec = use(name, **extra)
    assert spec.name == name
    assert spec.use == name


def test_pfsync(tmp_path: Path) -> None:
    spec = use("pfsync")
    assert spec.params == PfsyncParams("pfsync0", "ifconfig")
    assert (spec.demote, spec.fall) == (240, 2)
    in_sync = fake_ifconfig(tmp_path, UP + FBSD14 + "\tsyncok: 1\n" + GROUPS)
    assert probe(use("pfsync", ifconfig=str(in_sync))).status is Result.OK
    bulk = fake_ifconfig(tmp_path, UP + FBSD14 + "\tsyncok: 0\n" + GROUPS, name="ifconfig-bulk")
    assert probe(use("pfsync", ifconfig=str(bulk))).status is Result.FAILURE


@pytest.mark.parametrize(("name", "port"), [("sshd", 22), ("postgresql", 5432), ("dns", 53)])
def test_tcp_entries(name: str, port: int, listener: socket.socket) -> None:
    assert use(name).params == TcpParams("127.0.0.1", port)
    ours = listener.getsockname()[1]
    result = probe(use(name, port=ours))
    assert result.status is Result.OK
    assert result.detail.startswith(f"connected to 127.0.0.1:{ours} in ")
    assert probe(use(name, port=closed_port())).status is Result.FAILURE


def others_like(spec: CheckSpec, ours: set[int]) -> bool:
    """Whether a process other than ours matches (a real daemon on this machine)."""
    assert isinstance(spec.params, ProcessParams)
    for process in psutil.process_iter(["name", "cmdline", "status"]):
        if process.pid in ours or process.info["name"] != spec.params.process_name:
            continue
        line = " ".join(process.info["cmdline"] or [])
        if spec.params.cmdline is None or spec.params.cmdline.search(line):
            return True
    return False


def test_nginx(spawn_mimic: Callable[..., Mimic]) -> None:
    spec = use("nginx")
    assert isinstance(spec.params, ProcessParams)
    assert spec.params.process_name == "nginx"
    worker = spawn_mimic("nginx", argv0="nginx: worker process")
    if not others_like(spec, {worker.pid}):
        assert probe(spec).status is Result.FAILURE  # a worker alone is not nginx running
    master = spawn_mimic("nginx", argv0="nginx: master process /usr/sbin/nginx -g daemon on;")
    result = probe(spec)
    assert result.status is Result.OK
    assert str(master.pid) in result.detail
    master.kill()
    if not others_like(spec, {worker.pid}):
        assert probe(spec).status is Result.FAILURE


def test_haproxy(spawn_mimic: Callable[..., Mimic]) -> None:
    spec = use("haproxy")
    mimic = spawn_mimic("haproxy", argv0="/usr/sbin/haproxy")  # "-Ws -f ..." follow in ps
    result = probe(spec)
    assert result.status is Result.OK
    assert str(mimic.pid) in result.detail
    mimic.kill()
    if not others_like(spec, set()):
        assert probe(spec).status is Result.FAILURE


def test_http_health(http_server: HttpServer) -> None:
    spec = use("http-health", url=http_server.url + "/healthz")
    assert spec.params == HttpParams(http_server.url + "/healthz", (200,))
    assert probe(spec).status is Result.OK
    http_server.behaviour.status = 503
    assert probe(spec).status is Result.FAILURE
    with pytest.raises(ConfigError, match=r"check\[0\]\.url: missing"):
        use("http-health")


def test_maintenance_file(tmp_path: Path) -> None:
    assert use("maintenance-file").params == FileParams(
        Path("/etc/carpctl/maintenance"), exists=False
    )
    flag = tmp_path / "maintenance"
    spec = use("maintenance-file", path=str(flag))
    assert (spec.kind, spec.demote, spec.rise, spec.fall) == (Kind.FILE, 240, 1, 1)
    assert probe(spec).status is Result.OK
    flag.touch()
    assert probe(spec).status is Result.FAILURE

"""examples/carpctl.toml and examples/carpctl-freebsd.toml load as carpctl would load them.

``[[service]]`` tables are parsed by carpctl.reactor.spec; until
carpctl.daemon.config.load accepts the ``service`` section, the rest of the
file is loaded by the config loader with the ``[[service]]`` tables taken
out, and the tables are checked by the reactor's own parser (with the
config's vhids, so a service naming a vhid that is not configured fails).
Once load() accepts them, the whole file goes through load().
"""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pytest

from carpctl.daemon.config import Config, ConfigError, load
from carpctl.reactor.spec import Manager, ServiceSpec, parse_services

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SERVICE_HEADER = re.compile(r"^\[\[service\]\]\s*(#.*)?$")
TABLE_HEADER = re.compile(r"^\[")


def without_services(text: str) -> str:
    """``text`` with its ``[[service]]`` tables (header to the next table) removed."""
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if SERVICE_HEADER.match(line):
            skipping = True
        elif TABLE_HEADER.match(line):
            skipping = False
        if not skipping:
            kept.append(line)
    return "".join(kept)


def load_example(path: Path, platform: str) -> tuple[Config, tuple[ServiceSpec, ...]]:
    try:
        config = load(path)
    except ConfigError as error:
        if error.key != "service" or "unknown section" not in str(error):
            raise
    else:  # the loader knows [[service]] now
        return config, tuple(getattr(config, "services", ()))
    stripped = path.with_name(path.stem + ".noservices.toml")
    stripped.write_text(without_services(path.read_text()))
    config = load(stripped)
    raw: list[Any] = tomllib.loads(path.read_text()).get("service", [])
    known = [v.name for v in config.vhids] or None  # BSD: the kernel's vhids, unknown here
    return config, parse_services(path, raw, platform=platform, known_vhids=known)


@pytest.fixture
def linux_example(tmp_path: Path) -> Path:
    path = tmp_path / "carpctl.toml"
    shutil.copy(EXAMPLES / "carpctl.toml", path)
    (tmp_path / "vhid1.key").write_text("lan secret\n")  # password_file, relative to the file
    (tmp_path / "vhid2.key").write_text("uplink secret\n")
    return path


def test_without_services_keeps_everything_else() -> None:
    text = '[carp]\npreempt = true\n[[service]]\nname = "a"\nunit = "x"\n[[check]]\nuse = "sshd"\n'
    assert without_services(text) == '[carp]\npreempt = true\n[[check]]\nuse = "sshd"\n'


def test_the_linux_example_loads(linux_example: Path) -> None:
    config, services = load_example(linux_example, "linux")
    assert config.carpctl.backend == "auto"
    assert config.carp.preempt
    assert [v.name for v in config.vhids] == ["1@eth0", "2@eth1"]
    assert config.vhids[0].key == b"lan secret"
    assert [str(a) for a in config.vhids[0].addresses] == ["198.51.100.100/24", "2001:db8::100/64"]
    assert [c.name for c in config.checks] == ["sshd", "maintenance-file", "app", "uplink"]
    assert [c.use for c in config.checks][:3] == ["sshd", "maintenance-file", "http-health"]
    assert [s.name for s in services] == ["web", "uplink-nat"]
    web, nat = services
    assert web.manager is Manager.SYSTEMD
    assert web.unit == "carp-master@1-eth0.target"
    assert web.vhids == ("1@eth0",)
    assert nat.manager is Manager.COMMAND
    assert nat.vhids == ("1@eth0", "2@eth1")


def test_the_linux_example_uses_the_units_paths(linux_example: Path) -> None:
    config, _ = load_example(linux_example, "linux")
    service = (EXAMPLES.parent / "units" / "carpctl.service").read_text()
    assert f"RuntimeDirectory={config.carpctl.control_socket.parent.name}" in service
    assert f"StateDirectory={config.carpctl.state_dir.name}" in service


def test_the_linux_example_refuses_an_unknown_vhid(linux_example: Path) -> None:
    linux_example.write_text(
        linux_example.read_text().replace('vhids = ["1@eth0"]', 'vhids = ["9@eth9"]')
    )
    with pytest.raises(ConfigError, match=r"service\[0\]\.vhids\[0\]"):
        load_example(linux_example, "linux")


def test_the_freebsd_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "carpctl.toml"
    shutil.copy(EXAMPLES / "carpctl-freebsd.toml", path)
    config, services = load_example(path, "freebsd")
    assert config.carpctl.backend == "freebsd"
    assert config.vhids == ()
    assert "pfsync" in [c.name for c in config.checks]
    assert [s.name for s in services] == ["haproxy", "dhcpd", "uplink-routes"]
    assert [s.manager for s in services] == [Manager.FREEBSD, Manager.FREEBSD, Manager.COMMAND]
    assert services[0].rc == "haproxy"


def test_the_examples_name_only_documentation_addresses() -> None:
    for path in EXAMPLES.glob("*.toml"):
        for address in re.findall(r"\b\d+\.\d+\.\d+\.\d+\b", path.read_text()):
            assert address.startswith(("198.51.100.", "203.0.113.", "127.0.0.1")), (path, address)

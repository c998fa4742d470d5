"""The systemd units: carpctl.service, carp-master@.target, the strict drop-in, the example.

``systemd-analyze verify`` loads a unit as PID 1 would and checks that its
programs exist; systemd need not be running. It exits 0 on unknown keys and
bad values, though, and only warns, so a unit passes here when verify exits
0 *and* prints nothing -- and the negative cases prove that a typo, a bad
value or a missing program fail that same check. The programs the units
name (/usr/local/bin/carpctl, /usr/sbin/haproxy) are not installed here:
the copies name stand-ins in the test's directory instead.

``systemctl --root=DIR enable`` works offline too: it shows what the
[Install] sections do.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from carpctl.daemon.config import CarpctlSection

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "units"
SERVICE = UNITS / "carpctl.service"
TARGET = UNITS / "carp-master@.target"
STRICT = UNITS / "carpctl-strict.conf"
EXAMPLE = ROOT / "examples" / "haproxy-carp.service"
PROGRAMS = {"/usr/local/bin/carpctl": "carpctl", "/usr/sbin/haproxy": "haproxy"}

ANALYZE = shutil.which("systemd-analyze")
SYSTEMCTL = shutil.which("systemctl")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed")
needs_systemctl = pytest.mark.skipif(SYSTEMCTL is None, reason="systemctl is not installed")


def install(directory: Path, *units: Path) -> dict[str, Path]:
    """Copy ``units`` into ``directory``, their programs replaced by stand-ins that exist."""
    directory.mkdir(parents=True, exist_ok=True)
    stand_ins = directory.parent / "bin"
    stand_ins.mkdir(exist_ok=True)
    installed = {}
    for unit in units:
        text = unit.read_text()
        for program, name in PROGRAMS.items():
            fake = stand_ins / name
            fake.write_text("#!/bin/sh\nexit 0\n")
            fake.chmod(0o755)
            text = text.replace(program, str(fake))
        path = directory / unit.name
        path.write_text(text)
        installed[unit.name] = path
    return installed


def verify(*paths: Path) -> tuple[int, str]:
    assert ANALYZE is not None
    result = subprocess.run(
        [ANALYZE, "verify", "--man=no", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return result.returncode, (result.stdout + result.stderr).strip()


def settings(path: Path) -> dict[str, dict[str, list[str]]]:
    """section -> key -> values, in order (systemd's keys repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections.setdefault(current, {})
            continue
        key, _, value = line.partition("=")
        sections[current].setdefault(key, []).append(value)
    return sections


# -- verify --------------------------------------------------------------------


@needs_analyze
def test_the_units_verify_clean(tmp_path: Path) -> None:
    units = install(tmp_path / "system", SERVICE, TARGET, EXAMPLE)
    assert verify(units["carpctl.service"]) == (0, "")
    assert verify(units["haproxy-carp.service"]) == (0, "")
    # the template is verified through an instance named as units/README.md says
    assert verify(tmp_path / "system" / "carp-master@1-eth0.target") == (0, "")
    assert verify(tmp_path / "system" / "carp-master@router.target") == (0, "")
    assert verify(tmp_path / "system" / r"carp-master@1\x40eth0.target") == (0, "")  # escaped


@needs_analyze
def test_the_strict_drop_in_verifies_clean(tmp_path: Path) -> None:
    units = install(tmp_path / "system", SERVICE)
    drop_in = tmp_path / "system" / "carpctl.service.d"
    drop_in.mkdir()
    shutil.copy(STRICT, drop_in / "strict.conf")
    assert verify(units["carpctl.service"]) == (0, "")
    (drop_in / "strict.conf").write_text(STRICT.read_text() + "ProtectSystm=strict\n")
    _, output = verify(units["carpctl.service"])
    assert "Unknown key 'ProtectSystm'" in output  # the drop-in is read, not skipped


@needs_analyze
@pytest.mark.parametrize(
    ("unit", "old", "new", "complaint"),
    [
        (SERVICE, "WatchdogSec=10s", "WatchdogSex=10s", "Unknown key 'WatchdogSex'"),
        (SERVICE, "WatchdogSec=10s", "WatchdogSec=ten", "ignoring: ten"),
        (SERVICE, "KillMode=mixed", "KillMode=mixd", "ignoring: mixd"),
        (SERVICE, "Type=notify", "Type=notify-relaod", "ignoring: notify-relaod"),
        (SERVICE, "ProtectHome=read-only", "ProtectHome=readonly", "ignoring: readonly"),
        (SERVICE, "ExecStart=/usr/local/bin/carpctl run", "ExecStart=/nonexistent/carpctl run",
         "/nonexistent/carpctl"),
        (SERVICE, "[Service]", "[Servce]", "Servce"),
        (EXAMPLE, "PartOf=", "PartsOf=", "Unknown key 'PartsOf'"),
        (TARGET, "Description=", "Descripton=", "Unknown key 'Descripton'"),
    ],
)  # fmt: skip
def test_a_broken_unit_fails_the_same_check(
    tmp_path: Path, unit: Path, old: str, new: str, complaint: str
) -> None:
    text, replaced = re.subn(f"^{re.escape(old)}", new, unit.read_text(), count=1, flags=re.M)
    assert replaced == 1  # a setting, not a comment
    broken = tmp_path / "src" / unit.name
    broken.parent.mkdir()
    broken.write_text(text)
    install(tmp_path / "system", broken, *(u for u in (SERVICE, TARGET) if u.name != unit.name))
    target = unit.name.replace("@.", "@1-eth0.")
    code, output = verify(tmp_path / "system" / target)
    assert (code, output) != (0, "")
    assert complaint in output


# -- what the units say ---------------------------------------------------------


def test_carpctl_service_settings() -> None:
    unit = settings(SERVICE)
    service = unit["Service"]
    assert service["Type"] == ["notify"]
    assert service["NotifyAccess"] == ["main"]
    assert service["ExecStart"] == ["/usr/local/bin/carpctl run"]
    assert service["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert service["Restart"] == ["on-failure"]
    assert service["RestartPreventExitStatus"] == ["2"]  # carpctl's exit code for a bad config
    assert service["KillMode"] == ["mixed"]
    watchdog = service["WatchdogSec"][0]
    assert re.fullmatch(r"\d+s", watchdog)
    assert int(watchdog[:-1]) >= 5  # pinged every half of it from the event loop
    assert "network-online.target" in unit["Unit"]["After"][0]
    assert "network-online.target" in unit["Unit"]["Wants"][0]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]
    # what carpctl's children may need is not taken away (see the unit's comments)
    for key in ("CapabilityBoundingSet", "ProtectKernelTunables", "PrivateDevices",
                "SystemCallFilter", "RestrictAddressFamilies", "PrivateNetwork"):  # fmt: skip
        assert key not in service, key


def test_runtime_and_state_directories_are_the_config_defaults() -> None:
    service = settings(SERVICE)["Service"]
    defaults = CarpctlSection()
    assert Path("/run") / service["RuntimeDirectory"][0] == defaults.control_socket.parent
    assert Path("/var/lib") / service["StateDirectory"][0] == defaults.state_dir
    assert service["RuntimeDirectoryMode"] == ["0700"]
    assert service["StateDirectoryMode"] == ["0700"]


def test_the_target_is_pulled_in_by_nothing() -> None:
    target = settings(TARGET)
    assert "Install" not in target
    assert set(target["Unit"]) == {"Description"}  # no ordering against carpctl.service


def test_the_example_binds_to_the_target() -> None:
    example = settings(EXAMPLE)
    assert example["Unit"]["PartOf"] == ["carp-master@1-eth0.target"]
    assert example["Install"] == {"RequiredBy": ["carp-master@1-eth0.target"]}
    assert "multi-user.target" not in EXAMPLE.read_text().split("[Install]")[1]


@pytest.mark.skipif(shutil.which("systemd-escape") is None, reason="no systemd-escape")
def test_instance_names() -> None:
    def escape(*args: str) -> str:
        return subprocess.run(
            ["systemd-escape", *args], capture_output=True, text=True, check=True
        ).stdout.strip()

    # systemd-escape writes '@' in an instance as \x40; 1-eth0 is kept as it is
    assert escape("--template=carp-master@.target", "1@eth0") == r"carp-master@1\x40eth0.target"
    assert escape("--mangle", "carp-master@1-eth0.target") == "carp-master@1-eth0.target"
    assert escape("--unescape", "--instance", r"carp-master@1\x40eth0.target") == "1@eth0"


# -- enabling (systemctl --root, offline) --------------------------------------


@needs_systemctl
@needs_analyze
def test_enabling_links_carpctl_to_boot_and_haproxy_to_the_target_only(tmp_path: Path) -> None:
    system = tmp_path / "root" / "etc" / "systemd" / "system"
    install(system, SERVICE, TARGET, EXAMPLE)
    assert SYSTEMCTL is not None

    def systemctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SYSTEMCTL, f"--root={tmp_path / 'root'}", *args],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )

    assert systemctl("enable", "carpctl.service", "haproxy-carp.service").returncode == 0
    # the target has no [Install]: enabling it links nothing
    assert systemctl("enable", "carp-master@1-eth0.target").returncode == 0
    links = sorted(str(p.relative_to(system)) for p in system.rglob("*") if p.is_symlink())
    assert links == [
        "carp-master@1-eth0.target.requires/haproxy-carp.service",
        "multi-user.target.wants/carpctl.service",
    ]
    # the target now requires haproxy: a broken member shows when the target is verified
    assert verify(system / "carp-master@1-eth0.target") == (0, "")
    example = system / "haproxy-carp.service"
    example.write_text(example.read_text().replace("KillMode=mixed", "KillMode=mixd"))
    assert "ignoring: mixd" in verify(system / "carp-master@1-eth0.target")[1]
    # the README's way for the distribution's unit: add-requires
    haproxy = system / "haproxy.service"
    haproxy.write_text("[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n")
    assert systemctl("add-requires", "carp-master@2-eth1.target", "haproxy.service").returncode == 0
    assert (system / "carp-master@2-eth1.target.requires" / "haproxy.service").is_symlink()


@needs_analyze
def test_the_strict_drop_in_lowers_the_exposure(tmp_path: Path) -> None:
    def exposure(unit: Path) -> float:
        assert ANALYZE is not None
        result = subprocess.run(
            [ANALYZE, "security", "--offline=yes", str(unit)],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
        if match is None:
            pytest.skip(f"systemd-analyze security --offline is not available: {result.stderr}")
        return float(match[1])

    units = install(tmp_path / "system", SERVICE)
    default = exposure(units["carpctl.service"])
    drop_in = tmp_path / "system" / "carpctl.service.d"
    drop_in.mkdir()
    shutil.copy(STRICT, drop_in / "strict.conf")
    strict = exposure(units["carpctl.service"])
    assert strict < default - 3  # 7.8 -> 2.9 with systemd 252

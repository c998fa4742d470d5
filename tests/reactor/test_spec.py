"""[[service]] tables: every way, defaults, and errors naming file, key and expectation."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from carpctl.core.reactor import ServiceRule
from carpctl.daemon.config import ConfigError
from carpctl.reactor.spec import Manager, ServiceSpec, parse_services

FILE = Path("/etc/carpctl/carpctl.toml")


def parse(text: str, **kwargs: object) -> tuple[ServiceSpec, ...]:
    return parse_services(FILE, tomllib.loads(text)["service"], **kwargs)  # type: ignore[arg-type]


def refused(text: str, **kwargs: object) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse(text, **kwargs)
    return caught.value


def test_the_design_example_and_defaults() -> None:
    (spec,) = parse('[[service]]\nname = "haproxy"\nunit = "haproxy.service"\nvhids = ["1@eth0"]')
    assert spec == ServiceSpec(
        "haproxy", Manager.SYSTEMD, unit="haproxy.service", vhids=("1@eth0",)
    )
    assert (spec.timeout, spec.demote, spec.retry_after, spec.env) == (30.0, 240, 60.0, ())
    assert (spec.min_master, spec.flap_count, spec.flap_window, spec.hold_down) == (0, 0, 60, 60)
    assert spec.target == "haproxy.service"
    assert spec.rule() == ServiceRule("haproxy", ("1@eth0",))


def test_every_way_with_all_its_keys() -> None:
    specs = parse(
        """
[[service]]
name = "nginx"
unit = "nginx"
[[service]]
name = "pf@sync"
rc = "pfsync_up"
manager = "openbsd"
[[service]]
name = "app.v2"
start = ["/usr/local/bin/app", "--start"]
stop = ["/usr/local/bin/app", "--stop"]
status = ["/usr/local/bin/app", "--check"]
env = { APP_MODE = "primary", EMPTY = "" }
vhids = ["1@lab0", "2@lab1"]
timeout = 5
demote = 100
retry_after = 120.5
min_master = 2
flap_count = 4
flap_window = 30
hold_down = 90
[[service]]
name = "web"
run = ["/usr/bin/python3", "-m", "http.server", "8080"]
env = { PYTHONUNBUFFERED = "1" }
"""
    )
    nginx, pf, app, web = specs
    assert nginx.unit == "nginx.service"  # systemctl's own default suffix, made explicit
    assert (pf.manager, pf.rc, pf.target) == (Manager.OPENBSD, "pfsync_up", "pfsync_up")
    assert app == ServiceSpec(
        "app.v2", Manager.COMMAND,
        start=("/usr/local/bin/app", "--start"), stop=("/usr/local/bin/app", "--stop"),
        status=("/usr/local/bin/app", "--check"), env=(("APP_MODE", "primary"), ("EMPTY", "")),
        vhids=("1@lab0", "2@lab1"), timeout=5.0, demote=100, retry_after=120.5, min_master=2.0,
        flap_count=4, flap_window=30.0, hold_down=90.0,
    )  # fmt: skip
    assert (web.manager, web.run[-1], web.target) == (Manager.RUN, "8080", "/usr/bin/python3")


@pytest.mark.parametrize(
    ("platform", "manager"),
    [("freebsd14", Manager.FREEBSD), ("openbsd7", Manager.OPENBSD), ("linux", Manager.FREEBSD)],
)
def test_rc_manager_defaults_to_the_platform(platform: str, manager: Manager) -> None:
    (spec,) = parse('[[service]]\nname = "x"\nrc = "nginx"', platform=platform)
    assert spec.manager is manager
    (spec,) = parse('[[service]]\nname = "x"\nrc = "nginx"\nmanager = "freebsd"', platform=platform)
    assert spec.manager is Manager.FREEBSD


@pytest.mark.parametrize("unit", ["a.socket", "getty@tty1.service", "x-y_z:1.target", "a\\x2db"])
def test_unit_names(unit: str) -> None:
    (spec,) = parse(f"[[service]]\nname = 'x'\nunit = '{unit}'")
    assert spec.unit == (unit if "." in unit else f"{unit}.service")


MINIMAL = 'name = "web"\nunit = "nginx.service"\n'
CMD = 'name = "app"\nstart = ["/bin/app", "start"]\nstop = ["/bin/app", "stop"]\n'


@pytest.mark.parametrize(
    ("body", "key", "expected"),
    [
        # argv: lists, never a shell string
        ('name = "a"\nstart = "/bin/app --start"\nstop = ["/bin/app"]', "service[0].start",
         'got the string \'/bin/app --start\'; write it as ["/bin/app", "--start"]'),
        ('name = "a"\nstart = ["/bin/app"]\nstop = "app stop; rm -f /x"', "service[0].stop",
         "shell syntax needs a script"),
        ('name = "a"\nrun = "python3 -m http.server"', "service[0].run",
         "run without a shell"),
        (CMD + 'status = "pgrep app"', "service[0].status", "expected a list of strings"),
        ('name = "a"\nstart = []\nstop = ["x"]', "service[0].start",
         "expected a non-empty list of strings"),
        ('name = "a"\nstart = ["/bin/app", 1]\nstop = ["x"]', "service[0].start",
         "expected a non-empty list of strings"),
        ('name = "a"\nstart = ["/bin/app"]', "service[0].stop", "missing; expected a list"),
        # exactly one way
        (MINIMAL + 'start = ["/bin/app"]\nstop = ["/bin/app"]', "service[0].start",
         "expected only one of unit (systemd), rc (service/rcctl), start and stop (commands) "
         "or run (a server); unit and start are given together"),
        (MINIMAL + 'rc = "nginx"', "service[0].rc", "unit and rc are given together"),
        ('name = "a"\nrun = ["x"]\nstart = ["y"]\nstop = ["z"]', "service[0].run",
         "start and run"),
        ('name = "a"', "service[0].start", "missing; expected one of unit"),
        ('name = "a"\nstop = ["x"]', "service[0].start", "missing; expected one of unit"),
        (MINIMAL + 'status = ["x"]', "service[0].status",
         "unexpected key for a unit service; status belongs with start/stop, not unit"),
        ('name = "a"\nrun = ["x"]\nstop = ["y"]', "service[0].stop",
         "stop belongs with start/stop, not run"),
        (MINIMAL + 'env = { A = "b" }', "service[0].env", "env belongs with start/stop or run"),
        (MINIMAL + 'manager = "openbsd"', "service[0].manager", "expected one of systemd"),
        ('name = "a"\nrc = "x"\nmanager = "systemd"', "service[0].manager",
         "expected one of freebsd, openbsd"),
        # unknown keys, names
        (MINIMAL + "restart = true", "service[0].restart", "unknown key for a service"),
        ('unit = "x"', "service[0].name", "missing; expected a name"),
        ('name = "a b"\nunit = "x"', "service[0].name", "expected a name of letters"),
        ('name = "a;b"\nunit = "x"', "service[0].name", "expected a name of letters"),
        ('name = "a"\nunit = "-x.service"', "service[0].unit", "expected a systemd unit name"),
        ('name = "a"\nunit = "getty@.service"', "service[0].unit",
         "expected a systemd unit name"),
        ('name = "a"\nunit = "a b.service"', "service[0].unit", "expected a systemd unit name"),
        ('name = "a"\nunit = "x;reboot"', "service[0].unit", "expected a systemd unit name"),
        ('name = "a"\nrc = "-f"', "service[0].rc", "expected an rc.d script name"),
        ('name = "a"\nrc = "../x"', "service[0].rc", "expected an rc.d script name"),
        # vhids
        (MINIMAL + 'vhids = ["300@eth0"]', "service[0].vhids[0]",
         "expected VHID@INTERFACE with a vhid 1..255 and an interface name (like 1@eth0), "
         "got '300@eth0'"),
        (MINIMAL + 'vhids = ["1@eth0", "0@eth0"]', "service[0].vhids[1]", "got '0@eth0'"),
        (MINIMAL + 'vhids = ["1@eth0;touch x"]', "service[0].vhids[0]", "VHID@INTERFACE"),
        (MINIMAL + 'vhids = ["eth0"]', "service[0].vhids[0]", "VHID@INTERFACE"),
        (MINIMAL + "vhids = [1]", "service[0].vhids[0]", "VHID@INTERFACE"),
        (MINIMAL + 'vhids = "1@eth0"', "service[0].vhids", 'expected a non-empty list like'),
        (MINIMAL + "vhids = []", "service[0].vhids", "leave vhids out for every vhid"),
        (MINIMAL + 'vhids = ["1@eth0", "1@eth0"]', "service[0].vhids[1]", "is repeated"),
        # numbers
        (MINIMAL + "timeout = 0", "service[0].timeout", "expected a number of seconds above 0"),
        (MINIMAL + "timeout = -1", "service[0].timeout", "above 0"),
        (MINIMAL + 'timeout = "30"', "service[0].timeout", "above 0"),
        (MINIMAL + "demote = 1001", "service[0].demote", "expected an integer 0..1000"),
        (MINIMAL + "demote = true", "service[0].demote", "expected an integer 0..1000"),
        (MINIMAL + "retry_after = 0", "service[0].retry_after", "above 0"),
        (MINIMAL + "min_master = -1", "service[0].min_master", "expected a number of seconds 0.."),
        (MINIMAL + "flap_count = 2.5", "service[0].flap_count", "expected an integer 0..1000"),
        (MINIMAL + "hold_down = nan", "service[0].hold_down", "above 0"),
        # env
        (CMD + 'env = { "1A" = "x" }', "service[0].env", 'expected a table of NAME = "string"'),
        (CMD + "env = { A = 1 }", "service[0].env", 'expected a table of NAME = "string"'),
    ],
)  # fmt: skip
def test_config_errors_name_file_key_and_expectation(body: str, key: str, expected: str) -> None:
    error = refused(f"[[service]]\n{body}\n")
    assert error.file == str(FILE)
    assert error.key == key
    assert expected in str(error)
    assert str(error).startswith(f"{FILE}: {key}: ")


def test_duplicate_names() -> None:
    error = refused(f"[[service]]\n{MINIMAL}\n[[service]]\n{MINIMAL}")
    assert (error.key, str(error).split(": ", 2)[2]) == (
        "service[1].name",
        "duplicate: 'web' is also service[0]",
    )


def test_vhids_must_be_configured_when_known() -> None:
    text = f'[[service]]\n{MINIMAL}vhids = ["1@lab0", "2@lab0"]'
    assert parse(text, known_vhids=["1@lab0", "2@lab0"])[0].vhids == ("1@lab0", "2@lab0")
    error = refused(text, known_vhids=["1@lab0"])
    assert error.key == "service[0].vhids[1]"
    assert "expected a configured vhid (1@lab0), got '2@lab0'" in str(error)


def test_not_tables() -> None:
    with pytest.raises(ConfigError, match=r"service: expected \[\[service\]\] tables"):
        parse_services(FILE, {"name": "x"})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"service\[0\]: expected a table"):
        parse_services(FILE, ["x"])

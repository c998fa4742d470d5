"""carpctl.toml loading: the design's keys, and errors that say file, key, expectation."""

from __future__ import annotations

from ipaddress import ip_address, ip_interface
from pathlib import Path

import pytest

from carpctl.core.timing import Timing
from carpctl.daemon.config import ConfigError, load, parse

FULL = """
[carpctl]
backend = "embedded"
control_socket = "/run/test/carpctl.sock"
state_dir = "/var/lib/test"
log_format = "json"

[carp]
preempt = true
log = 2
ifdown_demotion_factor = 200

[[vhid]]
vhid = 1
interface = "lab0"
advbase = 1
advskew = 100
password = "secret"
addresses = ["198.51.100.100/24", "2001:db8::100/64"]

[[vhid]]
vhid = 2
interface = "lab0"
advbase = 0
advskew = 20
timing = "openbsd"
password_file = "vhid2.key"
addresses = ["203.0.113.5/24"]
peer = "203.0.113.9"
"""


def test_a_full_config_loads(tmp_path: Path) -> None:
    (tmp_path / "vhid2.key").write_text("from-a-file\nignored second line\n")
    path = tmp_path / "carpctl.toml"
    path.write_text(FULL)
    config = load(path)
    assert config.carpctl.backend == "embedded"
    assert config.carpctl.log_format == "json"
    assert (config.carp.preempt, config.carp.log, config.carp.ifdown_demotion_factor) == (
        True,
        2,
        200,
    )
    assert config.carp.senderr_demotion_factor == 240  # default
    one, two = config.vhids
    assert (one.name, one.advskew, one.key) == ("1@lab0", 100, b"secret")
    assert one.addresses == (ip_interface("198.51.100.100/24"), ip_interface("2001:db8::100/64"))
    assert (two.advbase, two.timing, two.key, two.peer) == (
        0,
        Timing.OPENBSD,
        b"from-a-file",
        ip_address("203.0.113.9"),
    )


def test_the_password_never_appears_in_repr() -> None:
    config = parse(FULL.replace('password_file = "vhid2.key"', 'password = "x"'))
    assert "secret" not in repr(config)


def test_an_empty_file_gives_the_defaults() -> None:
    config = parse("")
    assert (config.carpctl.backend, config.carp.allow, config.vhids) == ("auto", True, ())


@pytest.mark.parametrize(
    ("change", "key", "expectation"),
    [
        (("advskew = 100", "advskew = 300"), "vhid[0].advskew", "0..254"),
        (("advskew = 100", 'advskew = "100"'), "vhid[0].advskew", "integer"),
        (("vhid = 1", "vhid = 0"), "vhid[0].vhid", "1..255"),
        (("vhid = 1", "vhid = 2"), "vhid[1].vhid", "duplicate: 2@lab0"),
        (
            ('interface = "lab0"\nadvbase = 1', 'interface = "a b"\nadvbase = 1'),
            "vhid[0].interface",
            "interface name",
        ),
        (('"198.51.100.100/24"', '"198.51.100.100"'), "vhid[0].addresses[0]", "prefix length"),
        (('"198.51.100.100/24"', '"not-an-address/24"'), "vhid[0].addresses[0]", "address like"),
        (('"198.51.100.100/24"', '"224.0.0.18/24"'), "vhid[0].addresses[0]", "unicast"),
        (
            ('password = "secret"', 'password = "abcdefghijklmnopqrstu"'),
            "vhid[0].password",
            "at most 19 bytes",
        ),
        (("vhid2.key", "missing.key"), "vhid[1].password_file", "cannot read"),
        (("advskew = 20", "advskew = 0"), "vhid[1].advskew", "above 0 when advbase is 0"),
        (('timing = "openbsd"', 'timing = "linux"'), "vhid[1].timing", "freebsd or openbsd"),
        (('peer = "203.0.113.9"', 'peer = "nope"'), "vhid[1].peer", "unicast IP address"),
        (("preempt = true", "preempt = 1"), "carp.preempt", "bool"),
        (('backend = "embedded"', 'backend = "linux"'), "carpctl.backend", "one of auto, embedded"),
        (("log = 2", "logg = 2"), "carp.logg", "unknown key"),
        (
            ('log_format = "json"', 'log_format = "json"\nmetrics_listen = "::1:9723"'),
            "carpctl.metrics_listen",
            "brackets",
        ),
        (("[carp]", "[carpp]"), "carpp", "unknown section"),
        (('addresses = ["203.0.113.5/24"]', "addresses = []"), "vhid[1].addresses", "non-empty"),
    ],
)
def test_bad_configs_name_file_key_and_expectation(
    tmp_path: Path, change: tuple[str, str], key: str, expectation: str
) -> None:
    (tmp_path / "vhid2.key").write_text("k\n")
    path = tmp_path / "bad.toml"
    assert change[0] in FULL
    path.write_text(FULL.replace(change[0], change[1], 1))
    with pytest.raises(ConfigError) as caught:
        load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ")
    assert expectation in message
    assert caught.value.key == key


def test_both_password_and_password_file_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"vhid\[1\]\.password_file: expected either"):
        parse(FULL.replace('password_file = "vhid2.key"', 'password = "a"\npassword_file = "f"'))


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        parse("[carp\n", tmp_path / "x.toml")
    with pytest.raises(ConfigError, match="cannot read the config"):
        load(tmp_path / "absent.toml")


def test_vhids_on_one_interface_share_their_unicast_peer() -> None:
    two_peers = FULL.replace(
        'password = "secret"', 'password = "secret"\npeer = "203.0.113.8"'
    ).replace('password_file = "vhid2.key"', 'password = "x"')
    with pytest.raises(ConfigError, match=r"vhid\[1\]\.peer: expected 203\.0\.113\.8"):
        parse(two_peers)

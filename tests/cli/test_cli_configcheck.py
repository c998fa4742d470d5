"""``carpctl config check``: what would run, never the password."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

CONFIG = """\
[carpctl]
control_socket = "/run/test/ctl.sock"
metrics_listen = "127.0.0.1:9723"

[carp]
preempt = true

[[vhid]]
vhid = 1
interface = "lab0"
advbase = 2
advskew = 100
password = "s3cret-value"
addresses = ["198.51.100.100/24", "2001:db8::100/64"]
peer = "198.51.100.2"
virtual_mac = true

[[vhid]]
vhid = 20
interface = "lab1"
password_file = "key"
addresses = ["203.0.113.10/24"]
timing = "openbsd"
"""


def carpctl(*argv: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "carpctl", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "Traceback" not in done.stderr
    return done.returncode, done.stdout, done.stderr


def test_prints_what_would_run_without_passwords(tmp_path: Path) -> None:
    config = tmp_path / "carpctl.toml"
    config.write_text(CONFIG)
    (tmp_path / "key").write_text("file-secret\n")
    code, out, err = carpctl("config", "check", "-c", str(config))
    assert (code, err) == (0, "")
    assert "s3cret" not in out
    assert "file-secret" not in out
    lines = out.splitlines()
    assert lines[:7] == [
        f"{config}: valid",
        "backend         auto (embedded on this machine)",
        "control_socket  /run/test/ctl.sock",
        "state_dir       /var/lib/carpctl",
        "log_format      auto",
        "metrics_listen  127.0.0.1:9723",
        "carp            allow yes, preempt yes, log 1, ifdown_demotion_factor 240, "
        "senderr_demotion_factor 240",
    ]
    assert lines[8:] == [
        "vhid 1@lab0",
        "  interface    lab0",
        "  addresses    198.51.100.100/24, 2001:db8::100/64",
        "  advbase      2",
        "  advskew      100",
        "  timing       freebsd",
        "  peer         198.51.100.2 (unicast)",
        "  virtual_mac  00:00:5e:00:01:01",
        "  password     set",
        "",
        "vhid 20@lab1",
        "  interface    lab1",
        "  addresses    203.0.113.10/24",
        "  advbase      1",
        "  advskew      0",
        "  timing       openbsd",
        "  peer         multicast",
        "  virtual_mac  no",
        "  password     set",
    ]
    # -c before the command works as on every command.
    assert carpctl("-c", str(config), "config", "check") == (code, out, err)


def test_a_kernel_backend_can_be_named_on_any_platform(tmp_path: Path) -> None:
    config = tmp_path / "carpctl.toml"
    config.write_text('[carpctl]\nbackend = "freebsd"\n')
    code, out, _ = carpctl("config", "check", "-c", str(config))
    assert code == 0
    assert out.splitlines()[1] == "backend         freebsd"
    assert out.splitlines()[-1] == "no vhids"


def test_a_backend_that_cannot_run_is_shown(tmp_path: Path) -> None:
    config = tmp_path / "carpctl.toml"
    config.write_text('[carpctl]\nbackend = "embedded"\n')  # no [[vhid]]
    code, out, _ = carpctl("config", "check", "-c", str(config))
    assert code == 0
    assert out.splitlines()[1].startswith("backend         embedded (cannot run on this machine: ")


def test_a_bad_config_is_exit_2_with_the_loaders_sentence(tmp_path: Path) -> None:
    config = tmp_path / "carpctl.toml"
    config.write_text(CONFIG.replace("advskew = 100", "advskew = 300"))
    assert carpctl("config", "check", "-c", str(config)) == (
        2,
        "",
        f"carpctl: {config}: vhid[0].advskew: expected an integer 0..254, got 300\n",
    )
    code, out, err = carpctl("config", "check", "-c", str(tmp_path / "none.toml"))
    assert (code, out) == (2, "")
    assert err.endswith("none.toml: cannot read the config: No such file or directory\n")
    code, _, err = carpctl("config")
    assert code == 2
    assert (
        err
        == "carpctl: the following arguments are required: ACTION (see 'carpctl config --help')\n"
    )


def test_checks_are_listed_without_their_environment_values(tmp_path: Path) -> None:
    (tmp_path / "key").write_text("k\n")
    config = tmp_path / "carpctl.toml"
    config.write_text(
        CONFIG
        + '\n[[check]]\nname = "script"\nkind = "command"\n'
        + 'argv = ["/usr/local/bin/probe", "--fast"]\nenv = { TOKEN = "abc123" }\n'
        + '\n[[check]]\nuse = "sshd"\n'
    )
    code, out, _ = carpctl("config", "check", "-c", str(config))
    assert code == 0
    assert "check script: command" in out
    assert "argv=/usr/local/bin/probe --fast, env=TOKEN" in out
    assert "check sshd: tcp (stock: sshd)" in out
    assert "abc123" not in out

"""The FreeBSD and OpenBSD rc.d scripts in units/rc.d.

Neither BSD runs here. The scripts are checked with ``sh -n`` by the
machine's sh, which is dash on Debian -- not FreeBSD's sh nor OpenBSD's
ksh, so this proves POSIX syntax only. Then each script runs under dash
against a small stand-in for its rc.subr that does what the real one does
with the script's variables (start: start_precmd, then ``$command
$command_args``; OpenBSD: ``pexp`` from ``daemon`` and ``daemon_flags``),
with a fake carpctl and pkill, so the commands the scripts build are
checked, and fed to carpctl's real argument parser.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from carpctl.cli.main import build_parser

UNITS = Path(__file__).resolve().parents[2] / "units"
FREEBSD = UNITS / "rc.d" / "freebsd" / "carpctl"
OPENBSD = UNITS / "rc.d" / "openbsd" / "carpctl"
SH = shutil.which("sh") or "/bin/sh"
BSD_CONFIG = "/usr/local/etc/carpctl.toml"

FREEBSD_RC_SUBR = """\
load_rc_config() { [ -f "$FAKE_RC_CONF" ] && . "$FAKE_RC_CONF"; return 0; }
err() { echo "err $1: $2" >&2; exit "$1"; }
run_rc_command() {
	case "$1" in
	start)
		[ -z "$start_precmd" ] || $start_precmd || exit 1
		echo "exec ${command} ${command_args}"
		echo "pidfile ${pidfile}"
		echo "procname ${procname:-$command}"
		echo "required ${required_files}"
		echo "extra ${extra_commands}";;
	reload)
		[ -z "$reload_precmd" ] || $reload_precmd || exit 1
		$reload_cmd;;
	configtest)
		$configtest_cmd;;
	*)
		exit 3;;
	esac
}
"""

OPENBSD_RC_SUBR = """\
[ -n "$FAKE_FLAGS" ] && daemon_flags=$FAKE_FLAGS   # carpctl_flags from rc.conf.local
pexp="$(eval echo ${daemon}${daemon_flags:+ ${daemon_flags}})"
rc_cmd() {
	case "$1" in
	check)
		echo "pexp ${pexp}"
		echo "rc_bg ${rc_bg}"
		echo "logger ${daemon_logger}"
		echo "start ${daemon} ${daemon_flags}";;
	configtest)
		daemon=$FAKE_CARPCTL
		rc_configtest;;
	esac
}
"""


@pytest.mark.parametrize("script", [FREEBSD, OPENBSD], ids=["freebsd", "openbsd"])
def test_sh_n_accepts_the_script(script: Path) -> None:
    result = subprocess.run([SH, "-n", str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("script", [FREEBSD, OPENBSD], ids=["freebsd", "openbsd"])
def test_sh_n_refuses_a_broken_copy(script: Path, tmp_path: Path) -> None:
    broken = tmp_path / "carpctl"
    broken.write_text(script.read_text().replace("\n}\n", "\n", 1))  # a function left open
    result = subprocess.run([SH, "-n", str(broken)], capture_output=True, text=True, check=False)
    assert result.returncode != 0


class Sandbox:
    """A copy of an rc.d script sourcing a stand-in rc.subr, with a fake carpctl and pkill."""

    def __init__(self, tmp_path: Path, script: Path, rc_subr: str, real_subr: str) -> None:
        self.dir = tmp_path
        self.log = tmp_path / "calls.log"
        (tmp_path / "rc.subr").write_text(rc_subr)
        self.script = tmp_path / "carpctl"
        text = script.read_text()
        assert f". {real_subr}\n" in text
        self.script.write_text(text.replace(f". {real_subr}\n", f". {tmp_path}/rc.subr\n"))
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        for name in ("carpctl", "pkill"):
            tool = bin_dir / name
            tool.write_text(
                f'#!/bin/sh\necho "{name} $*" >> "{self.log}"\nexit "${{FAKE_RESULT:-0}}"\n'
            )
            tool.chmod(0o755)
        self.carpctl = bin_dir / "carpctl"
        self.env = {
            "PATH": f"{bin_dir}:{os.environ['PATH']}",
            "FAKE_CARPCTL": str(self.carpctl),
        }

    def run(self, action: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [SH, str(self.script), action],
            capture_output=True,
            text=True,
            env={**self.env, **env},
            check=False,
            timeout=10,
        )

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []


def _parse_carpctl(argv: list[str]) -> tuple[str, str]:
    """(command, config) as carpctl's own parser reads ``carpctl ARGS``."""
    args = build_parser().parse_args(argv)
    return args.command, args.config


# -- FreeBSD -------------------------------------------------------------------


@pytest.fixture
def freebsd(tmp_path: Path) -> Sandbox:
    box = Sandbox(tmp_path, FREEBSD, FREEBSD_RC_SUBR, "/etc/rc.subr")
    rc_conf = tmp_path / "rc.conf"
    rc_conf.write_text(f'carpctl_enable="YES"\ncarpctl_program="{box.carpctl}"\n')
    box.env["FAKE_RC_CONF"] = str(rc_conf)
    return box


def _lines(output: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in output.splitlines())


def test_freebsd_start_checks_the_config_then_runs_carpctl_under_daemon(freebsd: Sandbox) -> None:
    result = freebsd.run("start")
    assert result.returncode == 0, result.stderr
    assert freebsd.calls() == [f"carpctl -c {BSD_CONFIG} config check"]
    out = _lines(result.stdout)
    words = shlex.split(out["exec"])
    program = str(freebsd.carpctl)
    assert words == [
        "/usr/sbin/daemon", "-f", "-R", "5", "-S", "-l", "daemon", "-T", "carpctl",
        "-P", "/var/run/carpctl_daemon.pid", "-p", "/var/run/carpctl.pid",
        program, "-c", BSD_CONFIG, "run",
    ]  # fmt: skip
    assert _parse_carpctl(words[words.index(program) + 1 :]) == ("run", BSD_CONFIG)
    # stop and status act on daemon(8), whose pidfile -P names
    assert out["pidfile"] == "/var/run/carpctl_daemon.pid"
    assert out["procname"] == "/usr/sbin/daemon"
    assert out["required"] == BSD_CONFIG
    assert out["extra"].split() == ["reload", "configtest"]


def test_freebsd_refuses_to_start_with_a_broken_config(freebsd: Sandbox) -> None:
    result = freebsd.run("start", FAKE_RESULT="2")
    assert result.returncode != 0
    assert "exec" not in result.stdout
    assert f"{BSD_CONFIG} is not a valid configuration" in result.stderr


def test_freebsd_config_path_from_rc_conf(freebsd: Sandbox, tmp_path: Path) -> None:
    rc_conf = Path(freebsd.env["FAKE_RC_CONF"])
    rc_conf.write_text(rc_conf.read_text() + 'carpctl_config="/etc/carp/other.toml"\n')
    result = freebsd.run("start")
    assert result.returncode == 0, result.stderr
    assert freebsd.calls() == ["carpctl -c /etc/carp/other.toml config check"]
    assert shlex.split(_lines(result.stdout)["exec"])[-3:] == ["-c", "/etc/carp/other.toml", "run"]
    assert _lines(result.stdout)["required"] == "/etc/carp/other.toml"


def test_freebsd_reload_checks_then_signals_carpctl_not_daemon(freebsd: Sandbox) -> None:
    result = freebsd.run("reload")
    assert result.returncode == 0, result.stderr
    assert freebsd.calls() == [
        f"carpctl -c {BSD_CONFIG} config check",
        "pkill -HUP -L -F /var/run/carpctl.pid",  # the child's pidfile, only if locked
    ]


def test_freebsd_reload_of_a_broken_config_signals_nothing(freebsd: Sandbox) -> None:
    result = freebsd.run("reload", FAKE_RESULT="2")
    assert result.returncode != 0
    assert freebsd.calls() == [f"carpctl -c {BSD_CONFIG} config check"]


def test_freebsd_configtest(freebsd: Sandbox) -> None:
    assert freebsd.run("configtest").returncode == 0
    assert freebsd.run("configtest", FAKE_RESULT="2").returncode != 0


def test_freebsd_header_and_names() -> None:
    text = FREEBSD.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert re.search(r"^# PROVIDE: carpctl$", text, re.M)
    assert re.search(r"^# REQUIRE: .*\bNETWORKING\b", text, re.M)
    assert re.search(r"^# KEYWORD: .*\bshutdown\b", text, re.M)  # stopped (bow-out) at shutdown
    assert re.search(r'^name="carpctl"$', text, re.M)
    assert re.search(r'^rcvar="carpctl_enable"$', text, re.M)
    assert re.search(r'^run_rc_command "\$1"$', text, re.M)


# -- OpenBSD -------------------------------------------------------------------


@pytest.fixture
def openbsd(tmp_path: Path) -> Sandbox:
    return Sandbox(tmp_path, OPENBSD, OPENBSD_RC_SUBR, "/etc/rc.d/rc.subr")


def _pexp_matches(pexp: str, cmdline: str) -> bool:
    """pgrep -xf: the extended regular expression matches the whole command line."""
    return re.fullmatch(pexp, cmdline) is not None


def test_openbsd_runs_carpctl_in_the_background_and_finds_its_python(openbsd: Sandbox) -> None:
    result = openbsd.run("check")
    assert result.returncode == 0, result.stderr
    out = _lines(result.stdout)
    assert out["rc_bg"] == "YES"
    assert out["logger"] == "daemon.info"
    words = shlex.split(out["start"])
    assert words == ["/usr/local/bin/carpctl", "run", "-c", BSD_CONFIG]
    assert _parse_carpctl(words[1:]) == ("run", BSD_CONFIG)
    pexp = out["pexp"]
    running = f"/usr/local/bin/carpctl run -c {BSD_CONFIG}"
    for interpreter in (
        "/usr/local/bin/python3.11",
        "/usr/local/bin/python3",
        "/opt/carpctl/bin/python",
    ):
        assert _pexp_matches(pexp, f"{interpreter} {running}"), interpreter
    for other in (
        running,  # never the bare script: the kernel runs it through its interpreter
        f"/usr/local/bin/python3.11 /usr/local/bin/carpctl -c {BSD_CONFIG} event 1@em0 MASTER",
        f"/usr/local/bin/python3.11 {running} --verbose",
        f"sh -c /usr/local/bin/python3.11 {running} 2>&1 | logger -isp daemon.info -t carpctl",
    ):
        assert not _pexp_matches(pexp, other), other


def test_openbsd_configtest_uses_the_flags_config(openbsd: Sandbox) -> None:
    assert openbsd.run("configtest").returncode == 0
    assert openbsd.run("configtest", FAKE_FLAGS="run -c /etc/carpctl-b.toml").returncode == 0
    assert openbsd.run("configtest", FAKE_RESULT="2").returncode != 0
    assert openbsd.calls() == [
        f"carpctl -c {BSD_CONFIG} config check",
        "carpctl -c /etc/carpctl-b.toml config check",
        f"carpctl -c {BSD_CONFIG} config check",
    ]


def test_openbsd_flags_from_rc_conf_local_keep_pexp_matching(openbsd: Sandbox) -> None:
    out = _lines(openbsd.run("check", FAKE_FLAGS="run -c /etc/carpctl-b.toml").stdout)
    assert _pexp_matches(
        out["pexp"], "/usr/local/bin/python3.11 /usr/local/bin/carpctl run -c /etc/carpctl-b.toml"
    )


def test_openbsd_header_and_names() -> None:
    text = OPENBSD.read_text()
    assert text.startswith("#!/bin/ksh\n")
    assert re.search(r'^daemon="/usr/local/bin/carpctl"$', text, re.M)
    assert re.search(r"^rc_cmd \$1$", text, re.M)
    assert "rc_reload=NO" not in text  # reload is rc.subr's default: SIGHUP

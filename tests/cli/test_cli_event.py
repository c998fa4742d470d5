"""``carpctl event VHID@IF TYPE``: strict arguments, a quick hand-off, never a shell."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from control.fakedaemon import FakeDaemon

from carpctl.cli import event, main
from carpctl.control.protocol import ControlError, ErrorCode


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "ctl.sock"


@pytest.fixture
def config(tmp_path: Path, sock: Path) -> str:
    path = tmp_path / "carpctl.toml"
    path.write_text(f'[carpctl]\ncontrol_socket = "{sock}"\n')
    return str(path)


@pytest.fixture
def daemon(sock: Path) -> Iterator[FakeDaemon]:
    answer = {"vhid": "1@em0", "state": "MASTER", "changed": True}  # printed by no one
    with FakeDaemon(sock, canned={"event": answer}) as fake:
        yield fake


def carpctl(*argv: str) -> tuple[int, str, str, float]:
    """Run carpctl as devd does: a process of its own; also how long it took."""
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "carpctl", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout, done.stderr, time.monotonic() - start


def in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    assert err.startswith("carpctl: ")
    assert err.count("\n") == 1
    assert err.endswith("\n")
    assert "Traceback" not in err
    assert all(ch.isprintable() for ch in err[:-1])  # hostile bytes are shown escaped
    return err[:-1]


@pytest.mark.parametrize(
    ("argv", "sent"),
    [
        (["1@em0", "MASTER"], {"vhid": 1, "interface": "em0", "type": "MASTER"}),
        (["255@vlan10.20", "BACKUP"], {"vhid": 255, "interface": "vlan10.20", "type": "BACKUP"}),
        (["7@lagg_0-a", "INIT"], {"vhid": 7, "interface": "lagg_0-a", "type": "INIT"}),
        (["42@abcdefghijklmno", "MASTER"], {"vhid": 42, "interface": "abcdefghijklmno"}),
        (["10@0eth", "BACKUP"], {"vhid": 10, "interface": "0eth", "type": "BACKUP"}),
    ],
)
def test_valid_events_reach_the_daemon(
    daemon: FakeDaemon, config: str, argv: list[str], sent: dict[str, object]
) -> None:
    code, out, err, _ = carpctl("event", *argv, "-c", config)
    assert (code, out, err) == (0, "", "")
    assert daemon.requests == [("event", {"type": "MASTER", **sent})]


def test_the_config_option_goes_anywhere(daemon: FakeDaemon, config: str) -> None:
    assert carpctl("-c", config, "event", "1@em0", "MASTER")[:3] == (0, "", "")
    assert carpctl("event", "-c", config, "2@em0", "BACKUP")[:3] == (0, "", "")
    assert [args["vhid"] for _, args in daemon.requests] == [1, 2]


HOSTILE = [
    # shell payloads: the paths they name are checked below
    ["1@em0;touch {tmp}/semicolon", "MASTER"],
    ["$(touch {tmp}/dollar)@em0", "MASTER"],
    ["1@em0`touch {tmp}/backtick`", "MASTER"],
    ["1@em0", "MASTER;touch {tmp}/type"],
    ["1@em0", "$(touch {tmp}/typedollar)"],
    ["1@em0 && touch {tmp}/and", "MASTER"],
    ["1@em0|touch {tmp}/pipe", "MASTER"],
    # vhid
    ["300@em0", "MASTER"],
    ["256@em0", "MASTER"],
    ["0@em0", "MASTER"],
    ["01@em0", "MASTER"],
    ["+1@em0", "MASTER"],
    ["1.0@em0", "MASTER"],
    ["0x1@em0", "MASTER"],
    ["1 @em0", "MASTER"],
    ["@em0", "MASTER"],
    ["em0", "MASTER"],
    ["\u0661@em0", "MASTER"],  # ARABIC-INDIC DIGIT ONE
    ["\U0001d7cf@em0", "MASTER"],  # MATHEMATICAL BOLD DIGIT ONE
    # interface
    ["1@", "MASTER"],
    ["1@abcdefghijklmnop", "MASTER"],  # 16 characters
    ["1@em/0", "MASTER"],
    ["1@../etc", "MASTER"],
    ["1@.", "MASTER"],
    ["1@-em0", "MASTER"],
    ["1@em0 ", "MASTER"],
    ["1@em 0", "MASTER"],
    ["1@em0'", "MASTER"],
    ['1@em0"', "MASTER"],
    ["1@em0:1", "MASTER"],
    ["1@@em0", "MASTER"],
    ["1@em0@em1", "MASTER"],
    ["1@\u00e9m0", "MASTER"],
    ["1@em\uff10", "MASTER"],  # FULLWIDTH DIGIT ZERO
    ["1@em0\n", "MASTER"],
    ["1@em0\x1b[31m", "MASTER"],
    ["1@em0\u202e", "MASTER"],  # RIGHT-TO-LEFT OVERRIDE
    # type
    ["1@em0", "master"],
    ["1@em0", "Master"],
    ["1@em0", "MASTERX"],
    ["1@em0", "MASTER "],
    ["1@em0", "MASTER\n"],
    ["1@em0", "UP"],
    ["1@em0", ""],
    # count
    [],
    ["1@em0"],
    ["1@em0", "MASTER", "extra"],
    ["", ""],
    [""],
]


@pytest.mark.parametrize("words", HOSTILE, ids=[ascii(" ".join(w)) for w in HOSTILE])
def test_hostile_arguments_are_exit_2_and_never_sent(
    capsys: pytest.CaptureFixture[str],
    daemon: FakeDaemon,
    config: str,
    tmp_path: Path,
    words: list[str],
) -> None:
    argv = [w.format(tmp=tmp_path) for w in words]
    code, out, err = in_process(capsys, "event", *argv, "-c", config)
    assert (code, out) == (2, "")
    message = one_sentence(err)
    assert "VHID@IF" in message or "TYPE" in message
    bad = [w for w in argv if w not in ("MASTER", "1@em0")]
    if bad:
        assert ascii(bad[0])[:37] in message  # the bad argument, named safely
    assert daemon.requests == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["carpctl.toml", "run"]


def test_shell_payloads_run_nothing_in_a_real_process(
    daemon: FakeDaemon, config: str, tmp_path: Path
) -> None:
    for subsystem, kind in (
        (f"1@em0;touch {tmp_path}/x", "MASTER"),
        (f"$(touch {tmp_path}/y)@em0", "MASTER"),
        ("1@em0", f"`touch {tmp_path}/z`"),
    ):
        code, out, err, _ = carpctl("event", subsystem, kind, "-c", config)
        assert (code, out) == (2, "")
        one_sentence(err)
    assert not any((tmp_path / name).exists() for name in "xyz")
    assert daemon.requests == []


def test_an_option_like_argument_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, config: str
) -> None:
    code, out, err = in_process(capsys, "event", "-1@em0", "MASTER", "-c", config)
    assert (code, out) == (2, "")
    assert "unrecognized arguments: -1@em0" in one_sentence(err)
    assert daemon.requests == []


def test_no_daemon_is_exit_3_quickly(sock: Path, config: str) -> None:
    code, out, err, took = carpctl("event", "1@em0", "MASTER", "-c", config)
    assert (code, out) == (3, "")
    assert one_sentence(err) == (
        f"carpctl: the daemon is not reachable at {sock}: "
        "there is no socket (is `carpctl run` running?)"
    )
    assert took < 5


def test_a_daemon_that_never_answers_does_not_block_devd(sock: Path, config: str) -> None:
    sock.parent.mkdir()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as hung:
        hung.bind(str(sock))
        hung.listen(1)  # connections queue up and are never accepted
        code, out, err, took = carpctl("event", "1@em0", "MASTER", "-c", config)
    assert (code, out) == (3, "")
    assert one_sentence(err).endswith(f"no reply within {event.TIMEOUT:g} seconds")
    assert took < 5


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (ControlError("the embedded backend runs CARP itself and takes no events"), 1),
        (ControlError("no vhid 9@em0 here", ErrorCode.INVALID), 2),
    ],
)
def test_a_daemon_refusal_is_its_sentence_and_its_code(
    capsys: pytest.CaptureFixture[str], sock: Path, config: str, answer: ControlError, code: int
) -> None:
    with FakeDaemon(sock, canned={"event": answer}) as fake:
        result = in_process(capsys, "event", "9@em0", "BACKUP", "-c", config)
    assert result[:2] == (code, "")
    assert one_sentence(result[2]) == f"carpctl: {answer}"
    assert fake.requests == [("event", {"vhid": 9, "interface": "em0", "type": "BACKUP"})]


def test_a_config_being_edited_still_names_the_socket(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, config: str
) -> None:
    path = Path(config)
    path.write_text(path.read_text() + "[carp]\nallow = 1\n")  # valid TOML, invalid config
    assert in_process(capsys, "event", "1@em0", "MASTER", "-c", config) == (0, "", "")
    assert len(daemon.requests) == 1


def test_a_config_that_is_not_toml_is_exit_2(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, config: str, tmp_path: Path
) -> None:
    Path(config).write_text("[carpctl\n")
    code, _, err = in_process(capsys, "event", "1@em0", "MASTER", "-c", config)
    assert code == 2
    assert "not valid TOML" in one_sentence(err)
    code, _, err = in_process(capsys, "event", "1@em0", "MASTER", "-c", str(tmp_path / "none"))
    assert code == 2
    assert "cannot read the config" in one_sentence(err)
    assert daemon.requests == []


def test_help_says_what_happens_without_a_daemon(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = in_process(capsys, "event", "--help")
    assert code == 0
    assert "usage: carpctl event [-c FILE] VHID@IF TYPE" in out
    assert "reconciles" in out
    assert 'action "carpctl event $subsystem $type"' in out

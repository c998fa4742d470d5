"""``carpctl reload``: validated here first, then the daemon's plan, applied or refused."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from ipaddress import ip_interface
from pathlib import Path
from typing import Any

import pytest
from control.fakedaemon import FakeDaemon

from carpctl.cli import main
from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.daemon.config import Config, VhidSection
from carpctl.daemon.plan import Plan, diff

V1 = VhidSection(1, "lab0", (ip_interface("198.51.100.100/24"),), key=b"old-secret")
OLD = Config(Path("/etc/carpctl/carpctl.toml"), vhids=(V1,))
CALM = diff(OLD, replace(OLD, vhids=(replace(V1, advskew=50),)), {"1@lab0": "BACKUP"})
HARSH = diff(OLD, replace(OLD, vhids=(replace(V1, key=b"new-secret"),)), {"1@lab0": "MASTER"})


def answer(plan: Plan, applied: bool, refused: str | None = None) -> dict[str, Any]:
    return {"applied": applied, "plan": plan.to_json(), "refused": refused}


@pytest.fixture
def sock(tmp_path: Path) -> Path:
    return tmp_path / "run" / "ctl.sock"


@pytest.fixture
def config(tmp_path: Path, sock: Path) -> str:
    path = tmp_path / "carpctl.toml"
    path.write_text(f'[carpctl]\ncontrol_socket = "{sock}"\n')
    return str(path)


def reload(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(["reload", *argv])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def one_sentence(err: str) -> str:
    assert err.startswith("carpctl: ")
    assert err.count("\n") == 1
    return err[:-1]


@pytest.fixture
def daemon(sock: Path) -> Iterator[FakeDaemon]:
    with FakeDaemon(sock, canned={"reload": answer(CALM, applied=True)}) as fake:
        yield fake


def test_a_bad_config_is_exit_2_and_the_daemon_is_not_asked(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, config: str, tmp_path: Path
) -> None:
    path = Path(config)
    path.write_text(path.read_text() + "[[vhid]]\nvhid = 1\ninterface = 'lab0'\nadvskew = 300\n")
    code, out, err = reload(capsys, "-c", config)
    assert (code, out) == (2, "")
    assert one_sentence(err) == (
        f"carpctl: {config}: vhid[0].advskew: expected an integer 0..254, got 300"
    )
    code, out, err = reload(capsys, "--force", "-c", str(tmp_path / "missing.toml"))
    assert (code, out) == (2, "")
    assert "missing.toml: cannot read the config" in one_sentence(err)
    assert daemon.requests == []


def test_applied_prints_the_plan(
    capsys: pytest.CaptureFixture[str], daemon: FakeDaemon, config: str
) -> None:
    code, out, err = reload(capsys, "-c", config)
    assert (code, err) == (0, "")
    assert out == f"{CALM.render()}\nReloaded {config}.\n"
    assert "advskew 0 -> 50" in out
    assert daemon.requests == [("reload", {"dry_run": False, "force": False, "config": config})]


def test_dry_run_prints_the_daemons_plan(
    capsys: pytest.CaptureFixture[str], sock: Path, config: str
) -> None:
    with FakeDaemon(sock, canned={"reload": answer(HARSH, applied=False)}) as fake:
        code, out, err = reload(capsys, "--dry-run", "-c", config)
    assert (code, err) == (0, "")
    assert out == (f"{HARSH.render()}\nDry run: nothing was changed; applying it needs --force.\n")
    assert "password changed" in out
    assert "secret" not in out
    assert fake.requests == [("reload", {"dry_run": True, "force": False, "config": config})]
    with FakeDaemon(sock, canned={"reload": answer(CALM, applied=False)}):
        assert reload(capsys, "--dry-run", "-c", config)[1].endswith(
            "\nDry run: nothing was changed.\n"
        )


def test_refused_as_disruptive_is_exit_1_with_the_plan(
    capsys: pytest.CaptureFixture[str], sock: Path, config: str
) -> None:
    refusal = HARSH.refusal()
    assert refusal is not None
    with FakeDaemon(sock, canned={"reload": answer(HARSH, False, refusal)}):
        code, out, err = reload(capsys, "-c", config)
    assert (code, out) == (1, HARSH.render() + "\n")
    assert one_sentence(err) == f"carpctl: {refusal}"
    assert "--force" in err


def test_force_is_sent(capsys: pytest.CaptureFixture[str], sock: Path, config: str) -> None:
    with FakeDaemon(sock, canned={"reload": answer(HARSH, applied=True)}) as fake:
        code, out, _ = reload(capsys, "--force", "-c", config)
    assert code == 0
    assert out.endswith(f"\nReloaded {config}.\n")
    assert fake.requests == [("reload", {"dry_run": False, "force": True, "config": config})]


def test_a_relative_config_is_sent_absolute(
    daemon: FakeDaemon, config: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "carpctl", "reload", "-c", "carpctl.toml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])},
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert daemon.requests == [("reload", {"dry_run": False, "force": False, "config": config})]


def test_nothing_to_change(capsys: pytest.CaptureFixture[str], sock: Path, config: str) -> None:
    with FakeDaemon(sock, canned={"reload": answer(Plan(), applied=True)}):
        assert reload(capsys, "-c", config) == (
            0,
            f"No changes: the new configuration is the one in force.\nReloaded {config}.\n",
            "",
        )


ODD = [
    (
        ControlError(
            "this daemon runs with /etc/carpctl/carpctl.toml and reloads only that file",
            ErrorCode.INVALID,
        ),
        (2, "this daemon runs with /etc/carpctl/carpctl.toml and reloads only that file"),
    ),
    (ControlError("the backend failed: ifconfig exited 1"), (1, "the backend failed")),
    ({"applied": True}, (1, "the daemon's reload reply is malformed: result.refused")),
    (
        {"applied": "yes", "plan": {}, "refused": None},
        (1, "the daemon's reload reply is malformed: result.applied: expected bool"),
    ),
    (
        {"applied": True, "plan": {"vhids": []}, "refused": None},
        (1, "the daemon's reload reply is malformed: plan.checks: missing"),
    ),
    (answer(CALM, applied=False), (1, "the daemon did not apply the configuration")),
]


@pytest.mark.parametrize(("reply", "expected"), ODD)
def test_daemon_errors_and_odd_replies(
    capsys: pytest.CaptureFixture[str], sock: Path, config: str, reply: Any, expected: Any
) -> None:
    code, message = expected
    with FakeDaemon(sock, canned={"reload": reply}):
        result = reload(capsys, "-c", config)
    assert result[0] == code
    assert one_sentence(result[2]).startswith(f"carpctl: {message}")


def test_no_daemon_is_exit_3(capsys: pytest.CaptureFixture[str], sock: Path, config: str) -> None:
    code, out, err = reload(capsys, "--dry-run", "-c", config)
    assert (code, out) == (3, "")
    assert one_sentence(err) == (
        f"carpctl: the daemon is not reachable at {sock}: "
        "there is no socket (is `carpctl run` running?)"
    )


def test_help_names_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = reload(capsys, "--help")
    assert code == 0
    assert "1 refused as disruptive without --force" in out
    assert "--dry-run" in out

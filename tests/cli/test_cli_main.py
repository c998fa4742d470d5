"""The ``carpctl`` entry point: sub-commands, usage errors, never a traceback."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from carpctl.cli import inspect, main
from carpctl.cli.common import CliError, ExitCode

VECTORS = Path(__file__).parent.parent / "vectors"
S1 = VECTORS / "s1_vhid1_secret.pcap"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_commands_are_modules_with_the_command_interface() -> None:
    assert inspect in main.COMMANDS
    for command in main.COMMANDS:
        assert all(
            isinstance(getattr(command, name), str) for name in ("NAME", "HELP", "DESCRIPTION")
        )
        assert all(callable(getattr(command, name)) for name in ("configure", "run"))


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "carpctl: the following arguments are required: COMMAND (see 'carpctl --help')\n"),
        (["frobnicate"], "carpctl: argument COMMAND: invalid choice: 'frobnicate'"),
        (["inspect"], "carpctl: the following arguments are required: FILE"),
        (["-c"], "carpctl: argument -c/--config: expected one argument"),
    ],
)
def test_usage_errors_are_one_sentence_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_help_and_version_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "inspect" in out
    assert "3 the daemon is not reachable" in out
    code, out, _ = run(capsys, "inspect", "--help")
    assert code == 0
    assert "--pass-file" in out
    assert "process list" in out  # why --pass-file exists
    assert "do not make the exit code 1" in out  # VRRP
    code, out, _ = run(capsys, "--version")
    assert (code, out.split()[0]) == (0, "carpctl")


def test_command_errors_and_crashes_are_one_sentence(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(args: argparse.Namespace) -> int:
        raise CliError(ExitCode.UNREACHABLE, "the daemon is not reachable at /run/carpctl.sock")

    monkeypatch.setattr(inspect, "run", unreachable)
    assert run(capsys, "inspect", "x") == (
        3,
        "",
        "carpctl: the daemon is not reachable at /run/carpctl.sock\n",
    )

    def crash(args: argparse.Namespace) -> int:
        raise KeyError("boom")

    monkeypatch.setattr(inspect, "run", crash)
    assert run(capsys, "inspect", "x") == (1, "", "carpctl: internal error: KeyError: 'boom'\n")


def corrupted(data: bytes, cut: int, flips: list[tuple[int, int]]) -> bytes:
    buffer = bytearray(data[: max(0, len(data) - cut)])
    for position, bit in flips:
        if buffer:
            buffer[position % len(buffer)] ^= 1 << bit
    return bytes(buffer)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("truncated-record", S1.read_bytes()[:-10]),
        ("truncated-header", S1.read_bytes()[:20]),
        ("bad-magic", b"\x00" + S1.read_bytes()[1:]),
        ("pcapng-garbage", bytes.fromhex("0a0d0d0a") + bytes(range(40))),
        ("huge-record", S1.read_bytes()[:32] + b"\xff\xff\xff\x7f" + S1.read_bytes()[36:]),
    ],
)
def test_subprocess_never_prints_a_traceback(tmp_path: Path, name: str, data: bytes) -> None:
    path = tmp_path / f"{name}.pcap"
    path.write_bytes(data)
    argv = [sys.executable, "-m", "carpctl.cli", "inspect", str(path), "--pass", "secret"]
    result = subprocess.run(
        [*argv, "--addr", "192.0.2.100"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode in (1, 2)
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith("carpctl: ")
    assert result.stderr.count("\n") == 1


def test_console_script_and_password_from_stdin() -> None:
    script = Path(sys.executable).parent / "carpctl"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "carpctl.cli"]
    result = subprocess.run(
        [*command, "inspect", "--json", str(S1), "--pass-file", "-", "--addr", "192.0.2.100"],
        input=b"secret\n",
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, b"")
    assert result.stdout.count(b'"hmac": "ok"') == 5


REAL = [path.read_bytes() for path in sorted(VECTORS.glob("*.pcap"))]


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.sampled_from(REAL),
    st.integers(0, 600),
    st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 7)), max_size=5),
)
def test_corrupted_captures_in_process(
    capsys: pytest.CaptureFixture[str],
    tmp_path_factory: pytest.TempPathFactory,
    data: bytes,
    cut: int,
    flips: list[tuple[int, int]],
) -> None:
    path = tmp_path_factory.getbasetemp() / "fuzz.pcap"
    path.write_bytes(corrupted(data, cut, flips))
    for extra in ([], ["--json"]):
        code, _, err = run(
            capsys, "inspect", str(path), "--pass", "x", "--addr", "192.0.2.1", *extra
        )
        assert code in (0, 1, 2)
        assert "internal error" not in err
        assert err.count("\n") <= 1

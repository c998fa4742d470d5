"""The control protocol: lines, versions, argument validation, replies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carpctl.control import protocol, results
from carpctl.control.protocol import ControlError, ErrorCode
from carpctl.core.ledger import Entry, Source


def line(value: Any) -> bytes:
    return json.dumps(value).encode() + b"\n"


@pytest.mark.parametrize(
    ("command", "args", "normalised"),
    [
        ("status", {}, {}),
        ("demote", {"delta": 50}, {"delta": 50, "reason": "", "for": None}),
        ("demote", {"delta": -1000, "reason": "x"}, {"delta": -1000, "reason": "x", "for": None}),
        ("demote", {"delta": 5, "for": 30}, {"delta": 5, "reason": "", "for": 30.0}),
        (
            "demote",
            {"set": 0, "as": "db-1_a", "for": 1.5},
            {"set": 0, "as": "db-1_a", "reason": "", "for": 1.5},
        ),
        ("maintenance", {"on": True}, {"on": True, "reason": "", "for": None}),
        (
            "maintenance",
            {"on": False, "reason": "done"},
            {"on": False, "reason": "done", "for": None},
        ),
        ("check", {}, {"name": None}),
        ("check", {"name": "web"}, {"name": "web"}),
        (
            "event",
            {"vhid": 1, "interface": "lab0", "type": "MASTER"},
            {"vhid": 1, "interface": "lab0", "type": "MASTER"},
        ),
    ],
)
def test_valid_requests_round_trip_normalised(
    command: str, args: dict[str, Any], normalised: dict[str, Any]
) -> None:
    request = protocol.decode_request(protocol.encode_request(command, args))
    assert (request.command, request.args) == (command, normalised)


@pytest.mark.parametrize(
    ("command", "args", "message"),
    [
        ("status", {"x": 1}, "status takes no argument 'x'"),
        ("demote", {}, "demote needs delta, or set together with as"),
        ("demote", {"delta": "5"}, "delta must be an integer within -1000..1000"),
        ("demote", {"delta": True}, "delta must be an integer"),
        ("demote", {"delta": 1001}, "within -1000..1000, got 1001"),
        ("demote", {"delta": 99999999999}, "within -1000..1000"),
        ("demote", {"delta": 5.0}, "delta must be an integer"),
        ("demote", {"delta": -5, "for": 10}, "a demotion for a limited time must be positive"),
        ("demote", {"delta": 5, "set": 5, "as": "a"}, "either delta or set"),
        ("demote", {"set": 5}, "set together with as"),
        ("demote", {"set": -1, "as": "a"}, "set must be an integer within 0..1000"),
        ("demote", {"set": 5, "as": "a b"}, "as must be a name"),
        ("demote", {"set": 5, "as": ""}, "as must be a name"),
        ("demote", {"set": 5, "as": "x" * 65}, "as must be a name"),
        ("demote", {"delta": 5, "for": 0}, "for must be above 0"),
        ("demote", {"delta": 5, "for": -3}, "for must be above 0"),
        ("demote", {"delta": 5, "for": "5m"}, "for must be a number of seconds"),
        ("demote", {"delta": 5, "for": 1e12}, "at most ten years"),
        ("demote", {"delta": 5, "reason": 7}, "reason must be a text"),
        ("demote", {"delta": 5, "reason": "a\nb"}, "control characters"),
        ("demote", {"delta": 5, "reason": "r" * 201}, "at most 200 characters"),
        ("maintenance", {}, "on must be true or false, got None"),
        ("maintenance", {"on": 1}, "on must be true or false"),
        ("maintenance", {"on": False, "for": 60}, "maintenance off takes no duration"),
        ("check", {"name": "../x"}, "name must be a check name"),
        ("check", {"name": 3}, "name must be a check name"),
        ("event", {"vhid": 1, "interface": "lab0"}, "event needs type"),
        ("event", {"vhid": 0, "interface": "lab0", "type": "MASTER"}, "vhid must be an integer"),
        ("event", {"vhid": 1, "interface": "a/b", "type": "MASTER"}, "interface must be"),
        ("event", {"vhid": 1, "interface": "lab0", "type": "master"}, "type must be one of"),
        ("reboot", {}, "unknown command 'reboot'"),
    ],
)
def test_invalid_arguments_are_code_2_with_one_sentence(
    command: str, args: dict[str, Any], message: str
) -> None:
    with pytest.raises(ControlError) as caught:
        protocol.encode_request(command, args)
    assert caught.value.code == ErrorCode.INVALID
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
    # The daemon's side gives the same answer for the same line.
    raw = line({"version": 1, "command": command, "args": args})
    with pytest.raises(ControlError) as again:
        protocol.decode_request(raw)
    assert str(again.value) == str(caught.value)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"not json\n", "not a JSON object"),
        (b"\xff\xfe\n", "not a JSON object"),
        (b"[1, 2]\n", "not a JSON object"),
        (b'{"version": 1, "command": "demote", "args": {"delta": NaN}}\n', "not a JSON object"),
        (b"[" * 100000 + b"\n", "larger than"),
        (b"[" * 20000 + b"\n", "not a JSON object"),
        (line({"command": "status"}), "unsupported protocol version None"),
        (line({"version": 2, "command": "status"}), "unsupported protocol version 2"),
        (line({"version": True, "command": "status"}), "unsupported protocol version True"),
        (line({"version": 1}), "the request has no command"),
        (line({"version": 1, "command": "status", "args": []}), "args must be a JSON object"),
        (line({"version": 1, "command": "status", "extra": 1}), "unknown request field 'extra'"),
        (line({"version": 1, "command": "x" * 1000}), "unknown command 'xxxxxxxx"),
    ],
)
def test_malformed_request_lines_are_code_2(raw: bytes, message: str) -> None:
    with pytest.raises(ControlError) as caught:
        protocol.decode_request(raw)
    assert caught.value.code == ErrorCode.INVALID
    assert message in str(caught.value)
    assert len(str(caught.value)) < 200  # quoting garbage back stays short


@given(st.binary(max_size=300))
def test_no_bytes_crash_the_decoder(raw: bytes) -> None:
    try:
        protocol.decode_request(raw)
    except ControlError as error:
        assert error.code == ErrorCode.INVALID


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(), st.lists, max_leaves=8))
def test_no_json_value_as_args_crashes_the_validator(args: Any) -> None:
    for command in protocol.COMMANDS:
        try:
            protocol.validate_args(command, {"delta": args, "on": args, "name": args})
        except ControlError as error:
            assert error.code == ErrorCode.INVALID


def test_replies_round_trip() -> None:
    assert protocol.decode_reply(protocol.encode_result({"total": 5})) == {"total": 5}
    with pytest.raises(ControlError, match=r"^no such check$") as caught:
        protocol.decode_reply(protocol.encode_error("no such check", ErrorCode.INVALID))
    assert caught.value.code == ErrorCode.INVALID
    with pytest.raises(ValueError, match="code 1 or 2"):
        protocol.encode_error("x", ErrorCode.UNREACHABLE)


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\n",
        line({"version": 2, "ok": True, "result": {}}),
        line({"version": 1, "ok": True}),
        line({"version": 1, "ok": False, "error": "x", "code": 3}),
        line({"version": 1, "ok": False, "code": 1}),
    ],
)
def test_a_malformed_reply_is_a_failure(raw: bytes) -> None:
    with pytest.raises(ControlError) as caught:
        protocol.decode_reply(raw)
    assert caught.value.code == ErrorCode.FAILED


def test_result_shapes_are_checked() -> None:
    entry = Entry("operator", Source.OPERATOR, 50, 1000.0, None, "patching")
    change = results.change_result(entry, 50)
    assert results.check_change("demote", change) == {
        "entry": {
            "name": "operator",
            "source": "operator",
            "amount": 50,
            "since": 1000.0,
            "expires": None,
            "reason": "patching",
        },
        "total": 50,
    }
    assert results.check_change("maintenance", results.change_result(None, 0))["entry"] is None
    bad = {**entry.to_json(), "amount": True}
    with pytest.raises(ControlError, match=r"result\.entry\.amount: expected int, got a boolean"):
        results.check_change("demote", {"entry": bad, "total": 1})
    with pytest.raises(ControlError, match=r"result\.total: missing"):
        results.check_change("demote", {"entry": None})
    with pytest.raises(ControlError, match=r"result\.checks\[0\]: expected an object"):
        results.check_run({"checks": [1]})
    with pytest.raises(ControlError, match=r"result\.drops\.lab0\.bad_ttl: expected int"):
        results.check_result("status", {**minimal_status(), "drops": {"lab0": {"bad_ttl": "x"}}})
    assert results.check_status(minimal_status())["node"] == "node1"


def minimal_status() -> dict[str, Any]:
    return {
        "backend": "embedded",
        "node": "node1",
        "demotion": {"total": 0, "entries": []},
        "vhids": [],
        "checks": [],
        "drops": {},
        "kernel": None,
        "added_later": "ignored",
    }
